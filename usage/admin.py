from datetime import datetime, time, timedelta

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, Min, QuerySet
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from cohorta.admin_tools.csv_export import csv_stream_response
from cohorta.admin_tools.display import (
    HumanTitleMixin,
    TextInputFilter,
    price_cell,
    short_datetime,
    truncated,
    usd_cell,
    user_admin_link,
)
from cohorta.audit.admin_tools import AuditedAdminMixin, AuditedModelForm
from cohorta.audit.models import AuditEntry
from usage.features import feature_choices, feature_label
from usage.models import ModelAlias, ModelPrice, UsageEvent, UsageSource, UsageStatus
from usage.pricing import invalidate_pricing_cache
from usage.selectors import last_priced_event_at, price_row_is_used

# --- pricing ---------------------------------------------------------------------------------------

_PRICE_FIELDS = [
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "tier_threshold_tokens",
    "tier2_input_per_1m",
    "tier2_cached_input_per_1m",
    "tier2_output_per_1m",
]


class ModelPriceForm(AuditedModelForm):
    class Meta:
        model = ModelPrice
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # Calls keep arriving while the form is open: a time typed in it is soon in the past.
            field = self.fields["effective_from"]
            field.required, self.initial["effective_from"] = False, None
            field.help_text = "Empty: the price starts the moment you save."

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if self.instance.pk is None and not data.get("effective_from") and "effective_from" not in self.errors:
            data["effective_from"] = timezone.now()
        model, start = data.get("model"), data.get("effective_from")
        if model and start:
            last = last_priced_event_at(model, provider=data.get("provider") or "")
            if last is not None and start <= last:
                # Events store their cost, so nothing would change now; but the table would no
                # longer explain those costs, and a backfill of estimates would re-price them.
                self.add_error(
                    "effective_from",
                    ValidationError(
                        "Calls to %(model)s were already priced up to %(last)s. A price must start after "
                        "them, so the costs already recorded keep the price they were made at.",
                        params={"model": model, "last": timezone.localtime(last).strftime("%Y-%m-%d %H:%M:%S")},
                    ),
                )
        return data


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Prices that recorded events were made at are read-only: a price change is a new,
    later-dated row, so old events keep their cost and the table keeps explaining them."""

    audit_action = AuditEntry.Action.PRICING_CHANGE
    form = ModelPriceForm
    list_display = [
        "model",
        "on_provider",
        "starts",
        "input_price",
        "cached_price",
        "output_price",
        "long_prompts",
        "short_notes",
    ]
    list_filter = ["model", "provider"]
    search_fields = ["model", "provider", "notes"]
    date_hierarchy = "effective_from"
    fieldsets = [
        (None, {"fields": ["model", "provider", "effective_from", "notes"]}),
        ("Per million tokens (USD)", {"fields": ["input_per_1m", "cached_input_per_1m", "output_per_1m"]}),
        (
            "Second tier (long prompts)",
            {
                "fields": [
                    "tier_threshold_tokens",
                    "tier2_input_per_1m",
                    "tier2_cached_input_per_1m",
                    "tier2_output_per_1m",
                ],
                "classes": ["collapse"],
            },
        ),
        ("Audit", {"fields": ["change_reason"]}),
    ]

    @admin.display(description="Provider", ordering="provider")
    def on_provider(self, row: ModelPrice) -> str:
        return row.provider or "any"

    @admin.display(description="From", ordering="effective_from")
    def starts(self, row: ModelPrice) -> str:
        return short_datetime(row.effective_from)

    @admin.display(description="Input $/1M", ordering="input_per_1m")
    def input_price(self, row: ModelPrice) -> str:
        return price_cell(row.input_per_1m)

    @admin.display(description="Cached $/1M", ordering="cached_input_per_1m")
    def cached_price(self, row: ModelPrice) -> str:
        return price_cell(row.cached_input_per_1m)

    @admin.display(description="Output $/1M", ordering="output_per_1m")
    def output_price(self, row: ModelPrice) -> str:
        return price_cell(row.output_per_1m)

    @admin.display(description="Long prompts (in / out $/1M)")
    def long_prompts(self, row: ModelPrice) -> str:
        if not row.tier_threshold_tokens:
            return "—"
        return (
            f"over {row.tier_threshold_tokens:,} tokens: "
            f"{price_cell(row.tier2_input_per_1m)} / {price_cell(row.tier2_output_per_1m)}"
        )

    @admin.display(description="Notes", ordering="notes")
    def short_notes(self, row: ModelPrice) -> str:
        return truncated(row.notes, 40)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and price_row_is_used(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and price_row_is_used(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return fieldsets[:-1]  # a read-only page has nothing to give a reason for
        return fieldsets

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if obj is not None and price_row_is_used(obj):
            params = {
                "model": obj.model,
                "provider": obj.provider,
                "notes": obj.notes,
                **{f: getattr(obj, f) for f in _PRICE_FIELDS},
            }
            extra_context["price_in_use"] = True
            extra_context["new_price_url"] = (
                reverse("admin:usage_modelprice_add")
                + "?"
                + urlencode({key: value for key, value in params.items() if value not in (None, "")})
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        invalidate_pricing_cache()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        invalidate_pricing_cache()


@admin.register(ModelAlias)
class ModelAliasAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_action = AuditEntry.Action.PRICING_CHANGE
    form = AuditedModelForm
    list_display = ["alias", "model"]
    search_fields = ["alias", "model"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        invalidate_pricing_cache()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        invalidate_pricing_cache()


# --- usage events ---------------------------------------------------------------------------------


class UserFilter(TextInputFilter):
    title = "user"
    parameter_name = "user"
    placeholder = "email or id"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.isdigit():
            return queryset.filter(user_id=int(value))
        # Resolve the matching users first (a small table), then use usage_user_created_idx.
        users = get_user_model().objects.filter(email__icontains=value).values("pk")
        return queryset.filter(user_id__in=users)


class CachedValuesFilter(admin.SimpleListFilter):
    """The distinct values of a column, read once every few minutes: listing them means a
    scan of every event, too slow for each page view of a table with millions of rows."""

    field: str
    CACHE_SECONDS = 600

    def values(self) -> list[str]:
        return (
            cache.get_or_set(
                f"backoffice:usage-values:{self.field}",
                lambda: sorted(UsageEvent.objects.order_by().values_list(self.field, flat=True).distinct()),
                self.CACHE_SECONDS,
            )
            or []
        )

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.values()]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class ModelFilter(CachedValuesFilter):
    title = "model"
    parameter_name = field = "model"


class FeatureFilter(CachedValuesFilter):
    title = "feature"
    parameter_name = field = "feature"

    def lookups(self, request, model_admin):
        return feature_choices(self.values())


class _ListQuerySet(QuerySet):
    """The changelist's queryset, with a cheap answer to the date hierarchy's question.

    Django asks "which years/months/days have events?" with SELECT DISTINCT over
    every matching event: about a second on a million rows. This answers from the
    first and last event (two index lookups) and lists every period in between,
    so a quiet month without events still shows in the drill-down.
    """

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        current, last = timezone.localtime(bounds["first"]), timezone.localtime(bounds["last"])
        current = current.replace(hour=0, minute=0, second=0, microsecond=0)
        if kind in ("month", "year"):
            current = current.replace(day=1)
        if kind == "year":
            current = current.replace(month=1)
        periods = []
        while current <= last:
            periods.append(current)
            if kind == "day":
                current = timezone.make_aware(datetime.combine(current.date() + timedelta(days=1), time.min))
            elif kind == "month":
                current = current.replace(year=current.year + current.month // 12, month=current.month % 12 + 1)
            else:
                current = current.replace(year=current.year + 1)
        return periods if order == "ASC" else periods[::-1]


class _ExportChangeList(ChangeList):
    """The changelist's filters, search and ordering without fetching a page or counting rows."""

    def get_results(self, request):
        # Never shown: the export reads only the queryset.
        self.result_count, self.full_result_count = 0, None
        self.result_list = []


# (field, CSV header): headers a spreadsheet reader understands; the values stay the stored ones
# (feature ids, "ok"/"error") so exports join with the API's, plus the feature's label beside its id.
EXPORT_FIELDS = [
    ("id", "Event id"),
    ("created_at", "When (UTC)"),
    ("user_id", "User id"),
    ("user__email", "User email"),
    ("feature", "Feature id"),
    ("provider", "Provider"),
    ("model", "Model"),
    ("model_alias", "Model alias"),
    ("status", "Status"),
    ("error_class", "Error"),
    ("usage_source", "Token count source"),
    ("input_tokens", "Input tokens"),
    ("cached_input_tokens", "Cached input tokens"),
    ("output_tokens", "Output tokens"),
    ("reasoning_tokens", "Reasoning tokens"),
    ("cost_usd", "Cost (USD)"),
    ("price_missing", "No price"),
    ("latency_ms", "Latency (ms)"),
    ("ttft_ms", "Time to first token (ms)"),
    ("streamed", "Streamed"),
    ("simulated", "Simulated"),
    ("attempt", "Attempt"),
    ("focus_group_id", "Focus group id"),
    ("persona_id", "Persona id"),
    ("job_id", "Job id"),
    ("request_id", "Provider request id"),
]
_FEATURE_COLUMN = [field for field, _ in EXPORT_FIELDS].index("feature")


def _export_rows(rows):
    """Each row with the feature's label inserted before its id."""
    for row in rows:
        yield (*row[:_FEATURE_COLUMN], feature_label(row[_FEATURE_COLUMN]), *row[_FEATURE_COLUMN:])


@admin.register(UsageEvent)
class UsageEventAdmin(HumanTitleMixin, admin.ModelAdmin):
    """Read-only: events are the record of what each call cost."""

    # Eight narrow columns: the list fits a 1366 px screen beside its filters.
    list_display = ["when", "user_link", "feature_name", "model_name", "tokens", "cost", "latency", "flags"]
    list_display_links = ["when"]
    list_filter = [
        UserFilter,
        ModelFilter,
        FeatureFilter,
        "status",
        "usage_source",
        "price_missing",
        "simulated",
        "streamed",
    ]
    search_fields = ["request_id", "error_class"]
    search_help_text = "Request id or error class. Filter users and models on the right."
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = [*(field.name for field in UsageEvent._meta.fields), "feature_name"]
    # A second COUNT(*) over every event on each filtered page view is not worth its cost.
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        # Every stored field (new ones included), with the feature's label in place of its id.
        return ["feature_name" if name == "feature" else name for name in self.readonly_fields if name != "id"]

    def object_title(self, event: UsageEvent) -> str:
        return f"{feature_label(event.feature)} · {event.model} · {short_datetime(event.created_at)}"

    @admin.display(description="When", ordering="created_at")
    def when(self, event: UsageEvent) -> str:
        return short_datetime(event.created_at)

    @admin.display(description="User", ordering="user__email")
    def user_link(self, event: UsageEvent) -> str:
        user = event.user
        if user is None:
            return "system"
        return user_admin_link(user.pk, truncated(user.email, 26))

    @admin.display(description="Feature", ordering="feature")
    def feature_name(self, event: UsageEvent) -> str:
        return feature_label(event.feature)

    @admin.display(description="Model", ordering="model")
    def model_name(self, event: UsageEvent) -> str:
        return truncated(event.model, 22)

    @admin.display(description="Cost", ordering="cost_usd")
    def cost(self, event: UsageEvent) -> str:
        return usd_cell(event.cost_usd)

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, event: UsageEvent) -> str:
        if event.latency_ms is None:
            return "—"
        return f"{event.latency_ms:,} ms" if event.latency_ms < 1000 else f"{event.latency_ms / 1000:.1f} s"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # A copy of Django's own queryset (its database and routing hints too), with the cheap datetimes().
        return _ListQuerySet(
            model=queryset.model,
            query=queryset.query,
            using=queryset._db,  # type: ignore[attr-defined]  # django-stubs: private QuerySet state not stubbed
            hints=queryset._hints,  # type: ignore[attr-defined]  # django-stubs: private QuerySet state not stubbed
        )

    @admin.display(description="Tokens in / out")
    def tokens(self, event: UsageEvent) -> str:
        return f"{event.input_tokens:,} / {event.output_tokens:,}"

    @admin.display(description="Notes")
    def flags(self, event: UsageEvent) -> str:
        """A failure, and what makes the cost uncertain or not real."""
        notes: list[str] = []
        if event.status == UsageStatus.ERROR:
            notes.append(format_html('<strong class="bo-error">{}</strong>', "failed"))
        if event.price_missing:
            notes.append("no price")
        if event.usage_source == UsageSource.ESTIMATED:
            notes.append("estimated tokens")
        if event.simulated:
            notes.append("simulated")
        if event.status == UsageStatus.ERROR and event.error_class:
            notes.append(truncated(event.error_class.rsplit(".", 1)[-1], 24))
        return format_html_join(", ", "{}", ((note,) for note in notes))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_view), name="usage_usageevent_export")
        return [export, *super().get_urls()]

    def get_changelist(self, request, **kwargs):
        if getattr(request, "_usage_export", False):
            return _ExportChangeList
        return super().get_changelist(request, **kwargs)

    def export_view(self, request):
        """The changelist's current selection (filters, search, dates) as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request._usage_export = True
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters are not valid.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:usage_usageevent_changelist"))
        rows = changelist.queryset.values_list(*(field for field, _ in EXPORT_FIELDS))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        header = [name for _, name in EXPORT_FIELDS]
        header.insert(_FEATURE_COLUMN, "Feature")
        return csv_stream_response(
            request,
            filename=f"cohorta-usage-events-{stamp}.csv",
            header=header,
            queryset=rows,
            transform=_export_rows,
        )
