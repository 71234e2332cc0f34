from django.urls import path

from personas import api, api_generation

urlpatterns = [
    path("personas/", api.PersonaListCreateView.as_view(), name="persona-list"),
    path("personas/move/", api.PersonaMoveView.as_view(), name="persona-move"),
    path("personas/export/", api.PersonaExportView.as_view(), name="persona-export"),
    path("personas/import/", api.PersonaImportView.as_view(), name="persona-import"),
    path("personas/generate/", api_generation.GenerateView.as_view(), name="persona-generate"),
    path("personas/describe-image/", api_generation.DescribeImageView.as_view(), name="persona-describe-image"),
    path("personas/briefs/<int:brief_id>/", api_generation.BriefDetailView.as_view(), name="persona-brief"),
    path("personas/<int:persona_id>/", api.PersonaDetailView.as_view(), name="persona-detail"),
    path("personas/<int:persona_id>/versions/", api.PersonaVersionsView.as_view(), name="persona-versions"),
    path(
        "personas/<int:persona_id>/versions/<int:number>/restore/",
        api.PersonaRestoreView.as_view(),
        name="persona-restore",
    ),
    path("personas/<int:persona_id>/modify/", api_generation.ModifyView.as_view(), name="persona-modify"),
    path("folders/", api.FolderListCreateView.as_view(), name="folder-list"),
    path("folders/<int:folder_id>/", api.FolderDetailView.as_view(), name="folder-detail"),
]
