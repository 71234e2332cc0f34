import json

from django.apps import apps
from django.contrib import admin
from django.utils.html import format_html

from cohorta.admin_tools.display import short_datetime, truncated, user_admin_link
from cohorta.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only. Columns and fields carry operators' words ("What", "By"), not the model's
    column names (``target_repr``, ``actor_email``)."""

    list_display = ["when", "action", "by", "target", "account", "short_reason", "ip"]
    list_display_links = ["when"]
    list_filter = ["action"]
    search_fields = ["actor_email", "target_repr", "reason", "subject_user__email"]
    search_help_text = "Who did it, what it was done to, the account's email or the reason."
    date_hierarchy = "created_at"
    list_select_related = ["subject_user"]
    fields = readonly_fields = (
        "when_full",
        "action",
        "by",
        "target_full",
        "account",
        "reason",
        "before_json",
        "after_json",
        "ip",
    )

    @admin.display(description="When", ordering="created_at")
    def when(self, entry: AuditEntry) -> str:
        return short_datetime(entry.created_at)

    @admin.display(description="When")
    def when_full(self, entry: AuditEntry) -> str:
        return entry.created_at.strftime("%Y-%m-%d %H:%M:%S %Z")

    @admin.display(description="By", ordering="actor_email")
    def by(self, entry: AuditEntry) -> str:
        return truncated(entry.actor_email, 26) if entry.actor_email else "system"

    @admin.display(description="What", ordering="target_repr")
    def target(self, entry: AuditEntry) -> str:
        return truncated(entry.target_repr, 40)

    @admin.display(description="What")
    def target_full(self, entry: AuditEntry) -> str:
        if not (entry.target_type and entry.target_id):
            return entry.target_repr
        try:
            kind = apps.get_model(entry.target_type)._meta.verbose_name
        except (LookupError, ValueError):
            kind = entry.target_type  # a model since removed: its stored name is all there is
        return f"{entry.target_repr} ({kind} #{entry.target_id})"

    @admin.display(description="Account", ordering="subject_user__email")
    def account(self, entry: AuditEntry) -> str:
        user = entry.subject_user
        if user is None:
            return "—"
        return user_admin_link(user.pk, truncated(user.email, 26))

    @admin.display(description="Reason")
    def short_reason(self, entry: AuditEntry) -> str:
        return truncated(entry.reason, 40)

    @admin.display(description="IP", ordering="ip_address")
    def ip(self, entry: AuditEntry) -> str:
        return entry.ip_address or "—"

    @admin.display(description="Before")
    def before_json(self, entry: AuditEntry) -> str:
        return _json_block(entry.before)

    @admin.display(description="After")
    def after_json(self, entry: AuditEntry) -> str:
        return _json_block(entry.after)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _json_block(value) -> str:
    if not value:
        return "—"
    return format_html('<pre class="bo-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
