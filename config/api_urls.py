from django.urls import include, path

from billing import api as billing_api
from cohorta.jobs import api as jobs_api
from privacy import api as privacy_api
from usage import api as usage_api

app_name = "api"

urlpatterns = [
    path("me/", privacy_api.AccountView.as_view(), name="me"),
    path("me/export/", privacy_api.DataExportStartView.as_view(), name="me-export"),
    path("me/export/<str:job_id>/download/", privacy_api.DataExportDownloadView.as_view(), name="me-export-download"),
    path("credits/", billing_api.CreditsView.as_view(), name="credits"),
    path("credits/ledger/", billing_api.CreditLedgerView.as_view(), name="credit-ledger"),
    path("jobs/", jobs_api.JobListView.as_view(), name="job-list"),
    path("jobs/worker-check/", jobs_api.WorkerCheckStartView.as_view(), name="job-worker-check"),
    path("jobs/llm-check/", jobs_api.LlmCheckStartView.as_view(), name="job-llm-check"),
    path("jobs/<str:job_id>/", jobs_api.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel/", jobs_api.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/retry/", jobs_api.JobRetryView.as_view(), name="job-retry"),
    path("usage/", usage_api.MyUsageView.as_view(), name="usage"),
    path("usage/events/", usage_api.MyUsageEventsView.as_view(), name="usage-events"),
    path("staff/usage/summary/", usage_api.StaffUsageSummaryView.as_view(), name="staff-usage-summary"),
    path("", include("billing.api_urls")),
    path("", include("personas.api_urls")),
    path("", include("focusgroups.api_urls")),
    path("", include("surveys.api_urls")),
    path("", include("panels.api_urls")),
    path("", include("validation.api_urls")),
]
