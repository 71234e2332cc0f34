from django.urls import path

from surveys import views

app_name = "surveys"

urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.import_file, name="import"),
    path("import/example.csv", views.import_example, name="import_example"),
    path("<int:survey_id>/", views.detail, name="detail"),
    path("<int:survey_id>/delete/", views.delete, name="delete"),
    path("<int:survey_id>/preview/", views.preview, name="preview"),
    path("<int:survey_id>/questions/", views.question_add, name="question_add"),
    path("<int:survey_id>/questions/<int:question_id>/", views.question_edit, name="question_edit"),
    path("<int:survey_id>/questions/<int:question_id>/delete/", views.question_delete, name="question_delete"),
    path("<int:survey_id>/questions/<int:question_id>/move/", views.question_move, name="question_move"),
    path("<int:survey_id>/run/", views.run_start, name="run_start"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("runs/<int:run_id>/progress/", views.run_progress, name="run_progress"),
    path("runs/<int:run_id>/replay/", views.run_replay, name="run_replay"),
    path("runs/<int:run_id>/themes/", views.run_themes, name="run_themes"),
    path("runs/<int:run_id>/themes/status/", views.run_themes_status, name="run_themes_status"),
    path("runs/<int:run_id>/quality/", views.run_quality, name="run_quality"),
    path("runs/<int:run_id>/quality/status/", views.run_quality_status, name="run_quality_status"),
    path("runs/<int:run_id>/respondents/<int:respondent_id>/", views.respondent, name="respondent"),
    path("runs/<int:run_id>/export.<str:fmt>", views.export, name="export"),
]
