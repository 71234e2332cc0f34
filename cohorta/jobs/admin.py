from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator

from cohorta.backoffice.admin_tools import user_admin_link
from cohorta.jobs import services
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only rows; operators act on jobs only through the services (cancel, retry)."""

    list_display = ["created_at", "kind", "owner_link", "state", "progress", "attempts", "short_error"]
    list_filter = ["state", "kind", "created_at"]
    search_fields = ["id", "owner__email", "kind", "target_id", "error"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs", "retry_jobs"]
    readonly_fields = [f.name for f in Job._meta.fields]

    @admin.display(description="Owner", ordering="owner__email")
    def owner_link(self, job: Job) -> str:
        return user_admin_link(job.owner_id, job.owner.email)

    @admin.display(description="Progress")
    def progress(self, job: Job) -> str:
        done = f"{job.progress_done}/{job.progress_total}" if job.progress_total else ""
        return format_html(
            '<span class="bo-progress" title="{}"><span style="width: {}%"></span></span>{}',
            job.progress_message,
            job.percent,
            done,
        )

    @admin.display(description="Error")
    def short_error(self, job: Job) -> str:
        return Truncator(job.error).chars(60) if job.error else ""

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
