from django.contrib import admin

from usage.models import ModelAlias, ModelPrice, UsageEvent
from usage.pricing import invalidate_pricing_cache


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "effective_from",
        "input_per_1m",
        "cached_input_per_1m",
        "output_per_1m",
        "tier_threshold_tokens",
    ]
    list_filter = ["model"]
    search_fields = ["model", "notes"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        invalidate_pricing_cache()


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["alias", "model"]
    search_fields = ["alias", "model"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        invalidate_pricing_cache()


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "feature",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "usage_source",
        "price_missing",
        "latency_ms",
        "simulated",
    ]
    list_filter = ["status", "usage_source", "price_missing", "simulated", "feature", "provider", "model"]
    search_fields = ["user__email", "model", "feature", "request_id", "error_class"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = [field.name for field in UsageEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
