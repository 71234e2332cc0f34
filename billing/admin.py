from django.contrib import admin

from billing.models import CreditTransaction


@admin.register(CreditTransaction)
class CreditTransactionAdmin(admin.ModelAdmin):
    """The ledger, read-only. Operators correct balances with adjustments, never by editing rows."""

    list_display = ["created_at", "user_email", "kind", "delta", "balance_after", "reference", "description"]
    list_filter = ["kind", "created_at"]
    search_fields = ["user_email", "user__email", "reference", "idempotency_key"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [field.name for field in CreditTransaction._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
