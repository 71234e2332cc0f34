from django.apps import apps
from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html

from billing.models import (
    REFUSED_EVENT_STATUSES,
    CheckoutSession,
    CreditPack,
    CreditTransaction,
    StripeEventOutcome,
    StripeEventStatus,
)
from billing.packs import credit_pack_save
from billing.stripe_webhooks import DONE, stripe_event_process


@admin.register(CreditTransaction)
class CreditTransactionAdmin(admin.ModelAdmin):
    """The ledger, read-only. Operators correct balances with adjustments, never by editing rows:
    "Grant or adjust credits" on the user's page (or the users list action) adds a new row."""

    list_display = [
        "created_at",
        "account",
        "kind",
        "delta",
        "balance_after",
        "reference",
        "description",
        "created_by",
    ]
    list_filter = ["kind", "created_at", ("created_by", admin.EmptyFieldListFilter)]
    search_fields = ["user_email", "user__email", "reference", "idempotency_key", "description"]
    list_select_related = ["user", "created_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [field.name for field in CreditTransaction._meta.fields]

    @admin.display(description="User", ordering="user_email")
    def account(self, row: CreditTransaction) -> str:
        from cohorta.backoffice.admin_tools import user_admin_link

        return user_admin_link(row.user_id, row.user_email or "deleted user")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "credits", "price", "currency", "active", "stripe_price_id", "sort_order", "updated_at"]
    list_editable = ["active", "sort_order"]
    list_filter = ["active", "currency"]
    search_fields = ["name", "stripe_price_id"]
    fields = ["name", "credits", "price", "currency", "stripe_price_id", "active", "sort_order"]

    def save_model(self, request, obj, form, change):
        credit_pack_save(pack=obj, actor=request.user, request=request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # purchases name their pack: untick "active" to stop selling it


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Events an operator should look at: refused payments, failed, unmatched, or refunds that could not
    be clawed back in full."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [
            ("any", "Any problem"),
            ("refused", "Payment refused (nothing credited)"),
            ("shortfall", "Refund shortfall"),
            ("unmatched", "Unmatched"),
            ("failed", "Failed"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "any":
                return queryset.filter(
                    Q(status__in=[StripeEventStatus.FAILED, StripeEventStatus.UNMATCHED, *REFUSED_EVENT_STATUSES])
                    | Q(clawback_shortfall__gt=0)
                )
            case "refused":
                return queryset.filter(status__in=REFUSED_EVENT_STATUSES)
            case "shortfall":
                return queryset.filter(clawback_shortfall__gt=0)
            case "unmatched":
                return queryset.filter(status=StripeEventStatus.UNMATCHED)
            case "failed":
                return queryset.filter(status=StripeEventStatus.FAILED)
        return queryset


# Red: money someone claimed and we refused, or an error. Amber: waiting on something (a payment, a checkout).
_STATUS_COLOURS = {
    StripeEventStatus.UNKNOWN_CHECKOUT: "#b91c1c",
    StripeEventStatus.AMOUNT_MISMATCH: "#b91c1c",
    StripeEventStatus.CURRENCY_MISMATCH: "#b91c1c",
    StripeEventStatus.FAILED: "#b91c1c",
    StripeEventStatus.NOT_PAID: "#b45309",
    StripeEventStatus.UNMATCHED: "#b45309",
}


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StripeEventOutcome)
class StripeEventOutcomeAdmin(ReadOnlyAdmin):
    """What each money-moving Stripe event did. The event itself and every delivery of it (with the
    traceback when processing raised) are dj-stripe's: Events and Webhook event triggers, below."""

    list_display = [
        "created_at",
        "type",
        "event_id",
        "status_flag",
        "received_count",
        "shortfall_flag",
        "checkout_session",
        "short_error",
    ]
    list_filter = [NeedsAttentionFilter, "status", "type", "event__livemode"]
    search_fields = ["event__id", "type", "checkout_session__stripe_id", "checkout_session__user_email", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["checkout_session", "event"]
    readonly_fields = [field.name for field in StripeEventOutcome._meta.fields]
    actions = ["process_again"]

    @admin.display(description="Status", ordering="status")
    def status_flag(self, event: StripeEventOutcome) -> str:
        colour = _STATUS_COLOURS.get(event.status)
        if colour is None:
            return event.get_status_display()
        mark = "⛔" if event.status in REFUSED_EVENT_STATUSES else "⚠"
        return format_html(
            '<strong class="stripe-event-flag" data-status="{}" style="color: {}">{} {}</strong>',
            event.status,
            colour,
            mark,
            event.get_status_display(),
        )

    @admin.display(description="Shortfall", ordering="clawback_shortfall")
    def shortfall_flag(self, event: StripeEventOutcome) -> str:
        return f"⚠ {event.clawback_shortfall} credits" if event.clawback_shortfall else ""

    @admin.display(description="Note")
    def short_error(self, event: StripeEventOutcome) -> str:
        return event.error[:120]

    @admin.action(description="Process the selected events again (failed and unmatched only)")
    def process_again(self, request, queryset):
        # Processed events stay as they are: processing is exactly-once, this is for those that did nothing.
        done = 0
        for pk in queryset.exclude(status__in=DONE).values_list("pk", flat=True):
            stripe_event_process(outcome_pk=pk)
            done += 1
        self.message_user(request, f"Processed {done} event(s) again; see their status.", messages.INFO)


class ShortfallFilter(admin.SimpleListFilter):
    title = "refund shortfall"
    parameter_name = "shortfall"

    def lookups(self, request, model_admin):
        return [("yes", "Credits could not be taken back")]

    def queryset(self, request, queryset):
        return queryset.filter(clawback_shortfall__gt=0) if self.value() == "yes" else queryset


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "stripe_id",
        "user_email",
        "pack_name",
        "credits",
        "price_display",
        "status",
        "amount_refunded",
        "credits_clawed_back",
        "shortfall_flag",
        "paid_at",
    ]
    list_filter = [ShortfallFilter, "status", "currency"]
    search_fields = ["stripe_id", "user_email", "user__email", "payment_intent_id", "charge_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = [field.name for field in CheckoutSession._meta.fields]

    @admin.display(description="Amount", ordering="amount")
    def price_display(self, checkout: CheckoutSession) -> str:
        return f"{checkout.price} {checkout.currency.upper()}"

    @admin.display(description="Shortfall", ordering="clawback_shortfall")
    def shortfall_flag(self, checkout: CheckoutSession) -> str:
        return f"⚠ {checkout.clawback_shortfall} credits" if checkout.clawback_shortfall else ""


# dj-stripe's mirror of Stripe, browsable next to the ledger and read-only: Stripe is the source of these
# objects (change them in the Stripe dashboard), the ledger of credits. The rest of dj-stripe's models
# (subscriptions, invoices, payouts…) are not used by Cohorta and stay out of the back office.
STRIPE_MODELS_SHOWN = {
    "account",
    "apikey",
    "balancetransaction",
    "charge",
    "customer",
    "event",
    "paymentintent",
    "price",
    "product",
    "refund",
    "session",
    "webhookendpoint",
    "webhookeventtrigger",
}


def _deny(self, request, obj=None) -> bool:
    return False


def djstripe_admin_read_only(site: admin.AdminSite) -> None:
    """Keep the dj-stripe models Cohorta uses, each read-only (view permission only), and drop the others."""
    for model in list(apps.get_app_config("djstripe").get_models()):
        if not site.is_registered(model):
            continue
        if model._meta.model_name not in STRIPE_MODELS_SHOWN:
            site.unregister(model)
            continue
        model_admin = site.get_model_admin(model)
        for name in ("has_add_permission", "has_change_permission", "has_delete_permission"):
            setattr(model_admin, name, _deny.__get__(model_admin))
        model_admin.actions = []


djstripe_admin_read_only(admin.site)
