from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from cohorta.accounts import services
from cohorta.accounts.models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "role", "credit_balance", "monthly_quota_usd", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_active", "is_superuser"]
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Credits and quota",
            {
                "fields": ("credit_balance", "monthly_quota_usd"),
                "description": "The balance changes only through the credit ledger (grants, purchases, spends).",
            },
        ),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ["credit_balance", "last_login", "date_joined"]
    actions = ["disable_users", "enable_users"]

    @admin.display(description="Role")
    def role(self, user: User) -> str:
        return user.role

    @admin.action(description="Disable selected users (cancels their jobs)")
    def disable_users(self, request, queryset):
        for user in queryset:
            services.user_set_active(user=user, active=False)
        self.message_user(request, f"Disabled {queryset.count()} user(s).", messages.SUCCESS)

    @admin.action(description="Enable selected users")
    def enable_users(self, request, queryset):
        for user in queryset:
            services.user_set_active(user=user, active=True)
        self.message_user(request, f"Enabled {queryset.count()} user(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.user_set_active(user=obj, active=False)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email", "prefix"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request) -> bool:
        return False
