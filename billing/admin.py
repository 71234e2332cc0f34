from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from djstripe.models import Charge, PaymentIntent, Session

from billing.models import (
    REFUSED_EVENT_STATUSES,
    CheckoutSession,
    CreditPack,
    CreditTransaction,
    StripeEventOutcome,
    StripeEventStatus,
    from_minor_units,
)
from billing.packs import credit_pack_save
from billing.stripe_admin import stripe_admin_register
from billing.stripe_webhooks import DONE, stripe_event_process
from cohorta.admin_tools.display import short_datetime, truncated, user_admin_link


@admin.register(CreditTransaction)
class CreditTransactionAdmin(admin.ModelAdmin):
    """The ledger, read-only. Operators correct balances with adjustments, never by editing rows:
    "Grant or adjust credits" on the user's page (or the users list action) adds a new row."""

    list_display = ["when", "account", "kind", "delta", "balance_after", "reference_cell", "description", "by"]
    list_filter = ["kind", "created_at", ("created_by", admin.EmptyFieldListFilter)]
    search_fields = ["user_email", "user__email", "reference", "idempotency_key", "description"]
    list_select_related = ["user", "created_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [field.name for field in CreditTransaction._meta.fields]

    @admin.display(description="User", ordering="user_email")
    def account(self, row: CreditTransaction) -> str:
        return user_admin_link(row.user_id, row.user_email or "deleted user")

    @admin.display(description="When", ordering="created_at")
    def when(self, row: CreditTransaction) -> str:
        return short_datetime(row.created_at)

    @admin.display(description="Reference", ordering="reference")
    def reference_cell(self, row: CreditTransaction) -> str:
        # A purchase or refund names its checkout: link to it (and from there to what Stripe holds).
        kind, _, stripe_id = row.reference.partition(":")
        if kind == "checkout" and stripe_id:
            url = reverse("admin:billing_checkoutsession_changelist")
            return format_html('<a href="{}?q={}">{}</a>', url, stripe_id, truncated(row.reference, 24))
        return truncated(row.reference, 24) or "—"

    @admin.display(description="By", ordering="created_by__email")
    def by(self, row: CreditTransaction) -> str:
        return row.created_by.email if row.created_by else "—"

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
_STATUS_COLOURS: dict[str, str] = {
    StripeEventStatus.UNKNOWN_CHECKOUT: "#b91c1c",
    StripeEventStatus.AMOUNT_MISMATCH: "#b91c1c",
    StripeEventStatus.CURRENCY_MISMATCH: "#b91c1c",
    StripeEventStatus.FAILED: "#b91c1c",
    StripeEventStatus.NOT_PAID: "#b45309",
    StripeEventStatus.UNMATCHED: "#b45309",
}


class OutcomeModeFilter(admin.SimpleListFilter):
    title = "mode"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("test", "Test")]

    def queryset(self, request, queryset):
        if self.value() in ("live", "test"):
            return queryset.filter(event__livemode=self.value() == "live")
        return queryset


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

    list_display = ["received", "event_link", "status_flag", "checkout_link", "short_error"]
    list_filter = [NeedsAttentionFilter, "status", "type", OutcomeModeFilter]
    search_fields = ["event__id", "type", "checkout_session__stripe_id", "checkout_session__user_email", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["checkout_session", "event"]
    fields = readonly_fields = (
        "received",
        "event_link",
        "status_flag",
        "shortfall_flag",
        "note",
        "checkout_link",
        "deliveries",
        "processed",
    )
    actions = ["process_again"]

    @admin.display(description="Received", ordering="created_at")
    def received(self, event: StripeEventOutcome) -> str:
        return short_datetime(event.created_at)

    @admin.display(description="Event", ordering="event__id")
    def event_link(self, event: StripeEventOutcome) -> str:
        url = reverse("admin:djstripe_event_change", args=[event.event.pk])
        return format_html('<a href="{}">{}</a><br><span class="quiet">{}</span>', url, event.event_id, event.type)

    @admin.display(description="Status", ordering="status")
    def status_flag(self, event: StripeEventOutcome) -> str:
        # A refund that could not take all its credits back says so here too.
        shortfall = f" · ⚠ {event.clawback_shortfall} credits short" if event.clawback_shortfall else ""
        colour = _STATUS_COLOURS.get(event.status)
        if colour is None:
            return format_html("{}{}", event.get_status_display(), shortfall)
        mark = "⛔" if event.status in REFUSED_EVENT_STATUSES else "⚠"
        return format_html(
            '<strong class="stripe-event-flag" data-status="{}" style="color: {}">{} {}</strong>{}',
            event.status,
            colour,
            mark,
            event.get_status_display(),
            shortfall,
        )

    @admin.display(description="Refund shortfall", ordering="clawback_shortfall")
    def shortfall_flag(self, event: StripeEventOutcome) -> str:
        return f"⚠ {event.clawback_shortfall} credits" if event.clawback_shortfall else "—"

    @admin.display(description="Checkout", ordering="checkout_session__created_at")
    def checkout_link(self, event: StripeEventOutcome) -> str:
        checkout = event.checkout_session
        if checkout is None:
            return "—"
        url = reverse("admin:billing_checkoutsession_change", args=[checkout.pk])
        return format_html(
            '<a href="{}">{}</a><br><span class="quiet">{}</span>', url, checkout.pack_name, checkout.user_email
        )

    @admin.display(description="Note")
    def short_error(self, event: StripeEventOutcome) -> str:
        return truncated(event.error, 80) or "—"

    @admin.display(description="Note")
    def note(self, event: StripeEventOutcome) -> str:
        return event.error or "—"

    @admin.display(description="Deliveries")
    def deliveries(self, event: StripeEventOutcome) -> int:
        return event.received_count

    @admin.display(description="Processed", ordering="processed_at")
    def processed(self, event: StripeEventOutcome) -> str:
        return short_datetime(event.processed_at)

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
    """Cohorta's record of each purchase (what it sells and costs, what was refunded and clawed back), with
    links to what Stripe holds for it."""

    list_display = ["created", "stripe_session", "buyer", "pack_cell", "price_display", "status", "refund_display"]
    list_filter = [ShortfallFilter, "status", "currency"]
    search_fields = ["stripe_id", "user_email", "user__email", "payment_intent_id", "charge_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    fields = readonly_fields = (
        "stripe_session",
        "buyer",
        "pack_cell",
        "price_display",
        "status",
        "created",
        "paid",
        "refund_display",
        "shortfall_flag",
        "in_stripe",
        "receipt",
        "attempt",
    )

    @admin.display(description="Stripe ID", ordering="stripe_id")
    def stripe_session(self, checkout: CheckoutSession) -> str:
        return checkout.stripe_id

    @admin.display(description="Created", ordering="created_at")
    def created(self, checkout: CheckoutSession) -> str:
        return short_datetime(checkout.created_at)

    @admin.display(description="Paid", ordering="paid_at")
    def paid(self, checkout: CheckoutSession) -> str:
        return short_datetime(checkout.paid_at)

    @admin.display(description="Buyer", ordering="user_email")
    def buyer(self, checkout: CheckoutSession) -> str:
        return user_admin_link(checkout.user_id, checkout.user_email or "deleted user")

    @admin.display(description="Pack", ordering="pack_name")
    def pack_cell(self, checkout: CheckoutSession) -> str:
        return f"{checkout.pack_name or 'Credits'} · {checkout.credits} credits"

    @admin.display(description="Amount", ordering="amount")
    def price_display(self, checkout: CheckoutSession) -> str:
        return f"{checkout.price} {checkout.currency.upper()}"

    @admin.display(description="Refunded", ordering="amount_refunded")
    def refund_display(self, checkout: CheckoutSession) -> str:
        if not checkout.amount_refunded:
            return "—"
        refunded = from_minor_units(checkout.amount_refunded, checkout.currency)
        text = f"{refunded} {checkout.currency.upper()} · {checkout.credits_clawed_back} credits back"
        if checkout.clawback_shortfall:
            return format_html("{}<br>⚠ {} credits short", text, checkout.clawback_shortfall)
        return text

    @admin.display(description="Refund shortfall", ordering="clawback_shortfall")
    def shortfall_flag(self, checkout: CheckoutSession) -> str:
        return f"⚠ {checkout.clawback_shortfall} credits" if checkout.clawback_shortfall else "—"

    @admin.display(description="In Stripe")
    def in_stripe(self, checkout: CheckoutSession) -> str:
        """The mirrored Stripe objects of this purchase (dj-stripe's rows), once copied."""
        found = [
            (model, model.objects.filter(id=stripe_id).first())
            for model, stripe_id in [
                (Session, checkout.stripe_id),
                (PaymentIntent, checkout.payment_intent_id),
                (Charge, checkout.charge_id),
            ]
            if stripe_id
        ]
        links = [
            (
                reverse(f"admin:djstripe_{model._meta.model_name}_change", args=[row.pk]),
                str(model._meta.verbose_name).capitalize(),
            )
            for model, row in found
            if row is not None
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "Not copied yet"

    @admin.display(description="Receipt")
    def receipt(self, checkout: CheckoutSession) -> str:
        if not checkout.receipt_url:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">Stripe receipt</a>', checkout.receipt_url)


# dj-stripe's mirror of Stripe (customers, checkout sessions, payment intents, charges, refunds, events and
# webhook deliveries), read-only next to the ledger: Stripe is the source of those rows, the ledger of credits.
stripe_admin_register(admin.site)
