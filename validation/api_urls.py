from django.urls import path

from validation import api

urlpatterns = [
    path("validation/references/", api.ReferenceListCreateView.as_view(), name="validation-reference-list"),
    path(
        "validation/references/<int:reference_id>/",
        api.ReferenceDetailView.as_view(),
        name="validation-reference-detail",
    ),
    path(
        "validation/references/<int:reference_id>/mapping/",
        api.ReferenceMappingView.as_view(),
        name="validation-reference-mapping",
    ),
    path("validations/", api.ValidationListCreateView.as_view(), name="validation-list"),
    path("validations/<int:validation_id>/", api.ValidationDetailView.as_view(), name="validation-detail"),
    path(
        "validations/<int:validation_id>/scorecard/",
        api.ValidationScorecardView.as_view(),
        name="validation-scorecard",
    ),
    path(
        "validations/<int:validation_id>/scorecard/csv/",
        api.ValidationScorecardCsvView.as_view(),
        name="validation-scorecard-csv",
    ),
]
