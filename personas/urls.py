from django.urls import path

from personas import views, views_generation

app_name = "personas"

urlpatterns = [
    # Library and profiles (views.py)
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("move/", views.move, name="move"),
    path("export/", views.export, name="export"),
    path("import/", views.import_personas, name="import"),
    path("folders/", views.folder_create_view, name="folder_create"),
    path("folders/<int:folder_id>/rename/", views.folder_rename_view, name="folder_rename"),
    path("folders/<int:folder_id>/delete/", views.folder_delete_view, name="folder_delete"),
    path("<int:persona_id>/", views.detail, name="detail"),
    path("<int:persona_id>/edit/", views.edit, name="edit"),
    path("<int:persona_id>/delete/", views.delete, name="delete"),
    path("<int:persona_id>/versions/<int:number>/restore/", views.restore_version, name="restore"),
    # AI: generation, modification, vision (views_generation.py)
    path("generate/", views_generation.generate, name="generate"),
    path("briefs/<int:brief_id>/", views_generation.brief_detail, name="brief"),
    path("briefs/<int:brief_id>/personas/", views_generation.brief_personas, name="brief_personas"),
    path("describe-image/", views_generation.describe_image, name="describe_image"),
    path("<int:persona_id>/modify/", views_generation.modify, name="modify"),
]
