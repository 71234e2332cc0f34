from django.contrib import admin

from privacy.models import DataExport


@admin.register(DataExport)
class DataExportAdmin(admin.ModelAdmin):
    """Read-only: staff see that exports happened and when they go, never the files themselves."""

    list_display = ["created_at", "owner", "job", "size", "ready_at", "expires_at", "removed_at"]
    list_filter = ["removed_at"]
    search_fields = ["owner__email"]
    list_select_related = ["owner", "job"]
    readonly_fields = [f.name for f in DataExport._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
