from django.contrib import admin

from cohorta.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_email_or_system", "target_repr", "subject_user", "ip_address"]
    list_filter = ["action"]
    search_fields = ["actor_email", "target_repr", "reason", "subject_user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["subject_user"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description="Who", ordering="actor_email")
    def actor_email_or_system(self, entry: AuditEntry) -> str:
        return entry.actor_email or "system"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
