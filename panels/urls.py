from django.urls import path

from panels import views

app_name = "panels"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new, name="new"),
    path("populations/", views.population_upload, name="population_upload"),
    path("populations/example.csv", views.population_example, name="population_example"),
    path("populations/<int:population_id>/delete/", views.population_delete, name="population_delete"),
    path("microdata/", views.microdata_upload, name="microdata_upload"),
    path("microdata/<int:microdata_id>/delete/", views.microdata_delete, name="microdata_delete"),
    path("<int:panel_id>/", views.detail, name="detail"),
    path("<int:panel_id>/progress/", views.progress, name="progress"),
    path("<int:panel_id>/composition/", views.composition, name="composition"),
    path("<int:panel_id>/composition.<str:fmt>", views.composition_export, name="composition_export"),
    path("<int:panel_id>/export.json", views.panel_export, name="export"),
    path("<int:panel_id>/quality/", views.quality_section, name="quality"),
    path("<int:panel_id>/quality/start/", views.quality_start, name="quality_start"),
    path("<int:panel_id>/delete/", views.delete, name="delete"),
    path("folders/<int:folder_id>/composition/", views.folder_composition, name="folder_composition"),
    path(
        "folders/<int:folder_id>/composition.<str:fmt>",
        views.folder_composition_export,
        name="folder_composition_export",
    ),
]
