from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator

from cohorta.admin_tools.display import HumanTitleMixin, short_datetime, truncated, user_admin_link
from cohorta.jobs import services
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import Job
from cohorta.jobs.registry import kind_label, kind_names


class KindFilter(admin.SimpleListFilter):
    """Job kinds by their labels ("Persona generation"), not their registry names."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return sorted(((name, kind_label(name)) for name in kind_names()), key=lambda pair: pair[1].lower())

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(HumanTitleMixin, admin.ModelAdmin):
    """Read-only rows; operators act on jobs only through the services (cancel, retry)."""

    list_display = ["created", "kind_name", "owner_link", "state", "progress", "attempts", "short_error"]
    list_display_links = ["created"]
    list_filter = ["state", KindFilter, "created_at"]
    search_fields = ["id", "owner__email", "kind", "target_id", "error"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs", "retry_jobs"]
    readonly_fields = [*(f.name for f in Job._meta.fields), "kind_name"]

    def get_fields(self, request, obj=None):
        # Every stored field, with the kind's label in place of its registry name.
        return ["kind_name" if name == "kind" else name for name in self.readonly_fields if name != "kind_name"]

    def object_title(self, job: Job) -> str:
        return f"{kind_label(job.kind)} · {job.get_state_display()} · {short_datetime(job.created_at)}"

    @admin.display(description="Created", ordering="created_at")
    def created(self, job: Job) -> str:
        return short_datetime(job.created_at)

    @admin.display(description="Kind", ordering="kind")
    def kind_name(self, job: Job) -> str:
        return kind_label(job.kind)

    @admin.display(description="Owner", ordering="owner__email")
    def owner_link(self, job: Job) -> str:
        return user_admin_link(job.owner_id, truncated(job.owner.email, 26))

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
