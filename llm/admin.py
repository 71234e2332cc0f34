"""The response cache in the admin: how big it is, how often replays find what they need, when it expires."""

import json

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from cohorta.admin_tools.display import short_datetime, truncated
from cohorta.core.models import get_app_settings
from llm.models import CachedResponse, RunRecord
from llm.replay import cache_summary, replay_plan
from usage.features import feature_choices, feature_label


class CachedFeatureFilter(admin.SimpleListFilter):
    """Features by their human labels."""

    title = "feature"
    parameter_name = "feature"

    def lookups(self, request, model_admin):
        names = CachedResponse.objects.order_by().values_list("feature", flat=True).distinct()
        return feature_choices(names)

    def queryset(self, request, queryset):
        return queryset.filter(feature=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CachedResponse)
class CachedResponseAdmin(ReadOnlyAdmin):
    """Read-only: entries are written by live runs and deleted by the nightly expiry."""

    change_list_template = "admin/llm/cachedresponse/change_list.html"
    list_display = ("feature_name", "model_snapshot", "provider", "draw", "size", "replays", "created")
    list_filter = ("kind", "provider", CachedFeatureFilter)
    search_fields = ("request_hash", "model_snapshot")
    ordering = ("-created_at",)
    readonly_fields = (
        "request_hash",
        "draw",
        "kind",
        "feature",
        "provider",
        "model",
        "model_snapshot",
        "answer",
        "finish_reason",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "size_bytes",
        "created_at",
        "last_replayed_at",
        "replays",
    )
    exclude = ("text",)

    @admin.display(description="feature", ordering="feature")
    def feature_name(self, obj: CachedResponse) -> str:
        return feature_label(obj.feature)

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj: CachedResponse) -> str:
        return filesizeformat(obj.size_bytes)

    @admin.display(description="stored", ordering="created_at")
    def created(self, obj: CachedResponse) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="answer")
    def answer(self, obj: CachedResponse) -> str:
        if obj.kind == "embedding":
            return "(vectors)"
        return truncated(obj.text, 2000)

    def changelist_view(self, request, extra_context=None):
        summary = cache_summary(days=30)
        extra = {
            "cache_summary": summary,
            "cache_size": filesizeformat(summary.size_bytes),
            "cache_hit_rate": None if summary.hit_rate is None else round(summary.hit_rate * 100, 1),
            "cache_days": get_app_settings().llm_cache_days,
        }
        return super().changelist_view(request, extra_context={**extra, **(extra_context or {})})


@admin.register(RunRecord)
class RunRecordAdmin(ReadOnlyAdmin):
    list_display = ("scope", "mode", "replay_of", "answers", "created")
    list_filter = ("mode",)
    search_fields = ("scope",)
    ordering = ("-created_at",)
    readonly_fields = ("scope", "mode", "replay_of", "methods_text", "in_cache", "created_at")
    exclude = ("methods",)

    @admin.display(description="answers kept")
    def answers(self, obj: RunRecord) -> int:
        return obj.calls.count()

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: RunRecord) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="methods")
    def methods_text(self, obj: RunRecord) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.methods, indent=2, sort_keys=True))

    @admin.display(description="still in the cache")
    def in_cache(self, obj: RunRecord) -> str:
        plan = replay_plan(obj.scope)
        return f"{plan.calls - plan.missing} of {plan.calls} answers"
