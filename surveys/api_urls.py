from django.urls import path

from surveys import api

urlpatterns = [
    path("surveys/", api.SurveyListCreateView.as_view(), name="survey-list"),
    path("surveys/import/", api.SurveyImportView.as_view(), name="survey-import"),
    path("surveys/<int:survey_id>/", api.SurveyDetailView.as_view(), name="survey-detail"),
    path("surveys/<int:survey_id>/runs/", api.SurveyRunsView.as_view(), name="survey-runs"),
    path("surveys/runs/<int:run_id>/", api.RunDetailView.as_view(), name="survey-run-detail"),
    path("surveys/runs/<int:run_id>/results/", api.RunResultsView.as_view(), name="survey-run-results"),
    path("surveys/runs/<int:run_id>/themes/", api.RunThemesView.as_view(), name="survey-run-themes"),
    path("surveys/runs/<int:run_id>/quality/", api.RunQualityView.as_view(), name="survey-run-quality"),
    path("surveys/runs/<int:run_id>/exports/<str:fmt>/", api.RunExportView.as_view(), name="survey-run-export"),
]
