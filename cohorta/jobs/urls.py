from django.urls import path

from cohorta.jobs import views

urlpatterns = [
    path("", views.jobs_list, name="jobs_list"),
    path("panel/", views.jobs_panel, name="jobs_panel"),
    path("panel/dismiss/", views.jobs_panel_dismiss, name="jobs_panel_dismiss"),
    path("worker-check/", views.jobs_worker_check, name="jobs_worker_check"),
    path("llm-check/", views.jobs_llm_check, name="jobs_llm_check"),
    path("<str:job_id>/cancel/", views.jobs_cancel, name="jobs_cancel"),
    path("<str:job_id>/retry/", views.jobs_retry, name="jobs_retry"),
]
