from django.urls import path

from validation import views

app_name = "validation"

urlpatterns = [
    path("", views.index, name="index"),
    path("references/new/", views.upload, name="upload"),
    path("references/<int:reference_id>/", views.reference, name="reference"),
    path("references/<int:reference_id>/mapping/", views.mapping, name="mapping"),
    path("references/<int:reference_id>/start/", views.start, name="start"),
    path("references/<int:reference_id>/delete/", views.reference_delete, name="reference_delete"),
    path("<int:validation_id>/", views.detail, name="detail"),
    path("<int:validation_id>/progress/", views.progress, name="progress"),
    path("<int:validation_id>/score/", views.rescore, name="rescore"),
    path("<int:validation_id>/replay/", views.replay, name="replay"),
    path("<int:validation_id>/scorecard.<str:fmt>", views.export, name="export"),
    path("<int:validation_id>/delete/", views.delete, name="delete"),
]
