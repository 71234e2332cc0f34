from django.contrib import admin, messages

from cohorta.jobs import services
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "owner", "state", "progress_done", "progress_total", "attempts", "created_at"]
    list_filter = ["state", "kind", "created_at"]
    search_fields = ["id", "owner__email", "kind", "target_id"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs", "retry_jobs"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        self._apply(request, queryset, lambda job: services.job_cancel(job=job, reason="Cancelled by an admin."))

    @admin.action(description="Retry selected failed or interrupted jobs")
    def retry_jobs(self, request, queryset):
        self._apply(request, queryset, lambda job: services.job_retry(job=job))

    def _apply(self, request, queryset, action) -> None:
        done = skipped = 0
        for job in queryset:
            try:
                action(job)
                done += 1
            except IllegalJobTransition:
                skipped += 1
        self.message_user(
            request,
            f"{done} job(s) updated, {skipped} skipped (not in a state that allows it).",
            messages.SUCCESS if not skipped else messages.WARNING,
        )
