from django.urls import path

from cohorta.accounts import api as accounts_api
from cohorta.jobs import api as jobs_api

app_name = "api"

urlpatterns = [
    path("me/", accounts_api.MeView.as_view(), name="me"),
    path("jobs/", jobs_api.JobListView.as_view(), name="job-list"),
    path("jobs/worker-check/", jobs_api.WorkerCheckStartView.as_view(), name="job-worker-check"),
    path("jobs/<str:job_id>/", jobs_api.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel/", jobs_api.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/retry/", jobs_api.JobRetryView.as_view(), name="job-retry"),
]
