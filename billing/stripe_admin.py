"""The back office's read-only view of dj-stripe's tables: what Stripe holds for each purchase, next to the ledger.

dj-stripe's own admin classes are replaced for the objects of Cohorta's payments: they list every model
property on a detail page (the secret API key among them, as "Default api key"), label columns with field
names, and overflow a 1366 px screen. These show what an operator reads (who, how much, what state, when),
link a purchase's objects to each other and to Cohorta's checkout, and keep the object exactly as Stripe
sent it at the bottom of each page. Nothing here writes: Stripe is the source of these rows.
"""

import json

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from djstripe.models import (
    Account,
    APIKey,
    BalanceTransaction,
    Charge,
    Customer,
    Event,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Session,
    WebhookEndpoint,
    WebhookEventTrigger,
)

from billing.models import CheckoutSession, from_minor_units
from cohorta.admin_tools.display import HumanTitleMixin, short_datetime, truncated, user_admin_link

# dj-stripe's models keep their names in code (and in its migrations); the back office uses the words
# operators know. Only the labels change (Meta's declared options are what migrations compare).
ADMIN_NAMES = {
    Session: ("checkout session", "checkout sessions"),
    WebhookEventTrigger: ("webhook delivery", "webhook deliveries"),
    APIKey: ("API key", "API keys"),
}


def stripe_admin_names() -> None:
    # Listed right after Billing on the admin's index, as in the breadcrumbs.
    apps.get_app_config("djstripe").verbose_name = "Billing · Stripe"
    for model, (singular, plural) in ADMIN_NAMES.items():
        model._meta.verbose_name, model._meta.verbose_name_plural = singular, plural


# --- cells ---------------------------------------------------------------------------------------------------


def admin_link(obj, label: str | None = None) -> str:
    """A link to a row's admin page (by its Stripe id unless told), or "—"."""
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or obj.id)


def money(amount, currency) -> str:
    """Stripe's amount in the currency's smallest unit as "199.00 USD"."""
    if amount is None or not currency or isinstance(amount, bool):
        return "—"
    return f"{from_minor_units(int(amount), currency)}\u00a0{currency.upper()}"  # one line in a narrow column


def stripe_word(value) -> str:
    """Stripe's enum values as words: "requires_payment_method" → "Requires payment method"."""
    return str(value).replace("_", " ").capitalize() if value else "—"


def buyer_cell(customer: Customer | None) -> str:
    if customer is None:
        return "—"
    return admin_link(customer, customer.subscriber.email if customer.subscriber else customer.email or customer.id)


class ModeFilter(admin.SimpleListFilter):
    title = "mode"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("test", "Test")]

    def queryset(self, request, queryset):
        if self.value() in ("live", "test"):
            return queryset.filter(livemode=self.value() == "live")
        return queryset


class StripeDataFilter(admin.SimpleListFilter):
    """A filter on one key of the object as Stripe sent it (``key``, ``choices``)."""

    key = ""
    choices_shown: list[tuple[str, str]] = []

    def lookups(self, request, model_admin):
        return self.choices_shown

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"stripe_data__{self.key}": self.value()})
        return queryset


class PaymentStatusFilter(StripeDataFilter):
    title = "payment"
    parameter_name = "payment_status"
    key = "payment_status"
    choices_shown = [("paid", "Paid"), ("unpaid", "Unpaid"), ("no_payment_required", "No payment required")]


class SessionStatusFilter(StripeDataFilter):
    title = "status"
    parameter_name = "status"
    key = "status"
    choices_shown = [("open", "Open"), ("complete", "Complete"), ("expired", "Expired")]


# --- the admins --------------------------------------------------------------------------------------------


class ReadOnlyAdmin(HumanTitleMixin, admin.ModelAdmin):
    """Stripe is the source of these rows: the back office only reads them."""

    actions = None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StripeObjectAdmin(ReadOnlyAdmin):
    """A dj-stripe model, read-only: ``detail_fields`` on top, the Stripe object as sent at the bottom."""

    list_per_page = 50
    list_filter = [ModeFilter]
    search_fields = ["id"]
    ordering = ["-created", "-djstripe_id"]
    detail_fields: tuple[str, ...] = ()
    show_full_result_count = False

    def object_title(self, obj) -> str:
        return f"{obj._meta.verbose_name.capitalize()} {obj.id}"

    def get_fieldsets(self, request, obj=None):
        # Stripe's dashboard has no page for some objects (checkout sessions): no dead link then.
        dashboard = ["in_stripe"] if obj is not None and obj.get_stripe_dashboard_url() else []
        return [
            (None, {"fields": [*self.detail_fields, "mode", "created_at", *dashboard, "metadata_cell"]}),
            ("As Stripe sent it", {"fields": ["stripe_json"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.get_fieldsets(request, obj) for field in options["fields"]]

    @admin.display(description="Stripe ID", ordering="id")
    def stripe_id(self, obj) -> str:
        return obj.id

    @admin.display(description="Mode", ordering="livemode")
    def mode(self, obj) -> str:
        return {True: "Live", False: "Test"}.get(obj.livemode, "—")

    @admin.display(description="Created", ordering="created")
    def created_at(self, obj) -> str:
        return short_datetime(obj.created)

    @admin.display(description="In Stripe")
    def in_stripe(self, obj) -> str:
        url = obj.get_stripe_dashboard_url()
        return format_html('<a href="{}" target="_blank" rel="noopener">Open in the Stripe dashboard</a>', url)

    @admin.display(description="Metadata")
    def metadata_cell(self, obj) -> str:
        metadata = obj.metadata or {}
        if not metadata:
            return "—"
        return format_html_join(", ", "{}: {}", sorted(metadata.items()))

    @admin.display(description="Stripe data")
    def stripe_json(self, obj) -> str:
        text = json.dumps(obj.stripe_data or {}, indent=2, sort_keys=True)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class CustomerAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "user", "email", "state", "mode", "created_at"]
    list_select_related = ["subscriber"]
    search_fields = ["id", "email", "subscriber__email"]
    detail_fields = ("stripe_id", "user", "email", "name", "state", "purchases")

    @admin.display(description="User", ordering="subscriber__email")
    def user(self, customer: Customer) -> str:
        if customer.subscriber is None:
            return "—"
        return user_admin_link(customer.subscriber_id, customer.subscriber.email)

    @admin.display(description="Name")
    def name(self, customer: Customer) -> str:
        return customer.stripe_data.get("name") or "—"

    @admin.display(description="State", ordering="date_purged")
    def state(self, customer: Customer) -> str:
        # Cohorta replaces a customer Stripe no longer has (the keys moved to another account).
        return f"Replaced {short_datetime(customer.date_purged)}" if customer.date_purged else "In use"

    @admin.display(description="Payments")
    def purchases(self, customer: Customer) -> str:
        links = [
            (reverse(f"admin:djstripe_{model}_changelist"), customer.id, label)
            for model, label in [("session", "Checkout sessions"), ("charge", "Charges")]
        ]
        return format_html_join(" · ", '<a href="{}?q={}">{}</a>', links)


class SessionAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "buyer", "amount", "payment", "status", "purchase", "created_at"]
    list_filter = [PaymentStatusFilter, SessionStatusFilter, ModeFilter]
    list_select_related = ["customer__subscriber"]
    search_fields = ["id", "customer__id", "customer__email", "customer__subscriber__email", "payment_intent__id"]
    detail_fields = ("stripe_id", "purchase", "buyer", "amount", "payment", "status", "payment_intent_link")

    def get_queryset(self, request):
        ours = CheckoutSession.objects.filter(stripe_id=OuterRef("id"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                purchase_pk=Subquery(ours.values("pk")[:1]),
                purchase_pack=Subquery(ours.values("pack_name")[:1]),
                purchase_credits=Subquery(ours.values("credits")[:1]),
            )
        )

    @admin.display(description="Buyer", ordering="customer__email")
    def buyer(self, session: Session) -> str:
        return buyer_cell(session.customer)

    @admin.display(description="Amount")
    def amount(self, session: Session) -> str:
        return money(session.amount_total, session.currency)

    @admin.display(description="Payment")
    def payment(self, session: Session) -> str:
        return stripe_word(session.payment_status)

    @admin.display(description="Status")
    def status(self, session: Session) -> str:
        return stripe_word(session.status)

    @admin.display(description="Cohorta purchase")
    def purchase(self, session: Session) -> str:
        if session.purchase_pk is None:
            return "— (not made by Cohorta)"
        url = reverse("admin:billing_checkoutsession_change", args=[session.purchase_pk])
        return format_html(
            '<a href="{}">{} · {} credits</a>', url, session.purchase_pack or "Pack", session.purchase_credits
        )

    @admin.display(description="Payment intent")
    def payment_intent_link(self, session: Session) -> str:
        return admin_link(session.payment_intent)


class PaymentIntentAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "buyer", "amount", "status", "checkout", "created_at"]
    list_select_related = ["customer__subscriber"]
    search_fields = ["id", "customer__id", "customer__email", "customer__subscriber__email"]
    detail_fields = ("stripe_id", "buyer", "amount", "received", "status", "checkout", "charges")

    def get_queryset(self, request):
        sessions = Session.objects.filter(payment_intent=OuterRef("id"))
        return (
            super()
            .get_queryset(request)
            .annotate(session_pk=Subquery(sessions.values("pk")[:1]), session_id=Subquery(sessions.values("id")[:1]))
        )

    @admin.display(description="Buyer", ordering="customer__email")
    def buyer(self, intent: PaymentIntent) -> str:
        return buyer_cell(intent.customer)

    @admin.display(description="Amount")
    def amount(self, intent: PaymentIntent) -> str:
        return money(intent.stripe_data.get("amount"), intent.stripe_data.get("currency"))

    @admin.display(description="Received")
    def received(self, intent: PaymentIntent) -> str:
        return money(intent.stripe_data.get("amount_received"), intent.stripe_data.get("currency"))

    @admin.display(description="Status")
    def status(self, intent: PaymentIntent) -> str:
        return stripe_word(intent.stripe_data.get("status"))

    @admin.display(description="Checkout session")
    def checkout(self, intent: PaymentIntent) -> str:
        if intent.session_pk is None:
            return "—"
        url = reverse("admin:djstripe_session_change", args=[intent.session_pk])
        return format_html('<a href="{}">{}</a>', url, truncated(intent.session_id, 20))

    @admin.display(description="Charges")
    def charges(self, intent: PaymentIntent) -> str:
        return format_html_join(", ", "{}", ((admin_link(c),) for c in intent.charges.all())) or "—"


class ChargeAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "buyer", "amount_cell", "refunded", "status_cell", "created_at"]
    list_filter = ["status", ModeFilter]
    list_select_related = ["customer__subscriber"]
    search_fields = ["id", "customer__id", "customer__email", "customer__subscriber__email", "payment_intent__id"]
    detail_fields = (
        "stripe_id",
        "buyer",
        "amount_cell",
        "refunded",
        "status_cell",
        "payment_intent_link",
        "refunds_cell",
        "receipt",
    )

    @admin.display(description="Buyer", ordering="customer__email")
    def buyer(self, charge: Charge) -> str:
        return buyer_cell(charge.customer)

    @admin.display(description="Amount", ordering="amount")
    def amount_cell(self, charge: Charge) -> str:
        return money(charge.stripe_data.get("amount"), charge.currency)

    @admin.display(description="Refunded")
    def refunded(self, charge: Charge) -> str:
        refunded = charge.stripe_data.get("amount_refunded") or 0
        return money(refunded, charge.currency) if refunded else "—"

    @admin.display(description="Status", ordering="status")
    def status_cell(self, charge: Charge) -> str:
        return stripe_word(charge.status)

    @admin.display(description="Payment intent")
    def payment_intent_link(self, charge: Charge) -> str:
        return admin_link(charge.payment_intent)

    @admin.display(description="Refunds")
    def refunds_cell(self, charge: Charge) -> str:
        rows = [(admin_link(r), money(r.amount, r.currency)) for r in charge.refunds.order_by("created")]
        return format_html_join(", ", "{} ({})", rows) or "—"

    @admin.display(description="Receipt")
    def receipt(self, charge: Charge) -> str:
        url = charge.stripe_data.get("receipt_url")
        return format_html('<a href="{}" target="_blank" rel="noopener">Stripe receipt</a>', url) if url else "—"


class RefundAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "charge_link", "buyer", "amount_cell", "status", "reason", "created_at"]
    list_select_related = ["charge__customer__subscriber"]
    search_fields = ["id", "charge__id", "charge__customer__email", "charge__customer__subscriber__email"]
    detail_fields = ("stripe_id", "charge_link", "buyer", "amount_cell", "status", "reason")

    @admin.display(description="Charge", ordering="charge__id")
    def charge_link(self, refund: Refund) -> str:
        return admin_link(refund.charge, truncated(refund.charge.id, 20) if refund.charge else None)

    @admin.display(description="Buyer")
    def buyer(self, refund: Refund) -> str:
        return buyer_cell(refund.charge.customer if refund.charge else None)

    @admin.display(description="Amount", ordering="amount")
    def amount_cell(self, refund: Refund) -> str:
        return money(refund.amount, refund.currency)

    @admin.display(description="Status")
    def status(self, refund: Refund) -> str:
        return stripe_word(refund.status)

    @admin.display(description="Reason")
    def reason(self, refund: Refund) -> str:
        return stripe_word(refund.reason)


class EventAdmin(StripeObjectAdmin):
    list_display = ["stripe_id", "type", "about", "outcome", "deliveries", "created_at"]
    list_filter = ["type", ModeFilter]
    list_select_related = ["cohorta_outcome"]
    search_fields = ["id", "type", "data__object__id"]
    detail_fields = ("stripe_id", "event_type", "about_full", "outcome", "deliveries", "version", "request")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("webhookeventtrigger"))

    def get_fieldsets(self, request, obj=None):
        # The event's object is its data; the rest of the envelope is in the fields above.
        return [
            (None, {"fields": [*self.detail_fields, "mode", "created_at"]}),
            ("As Stripe sent it", {"fields": ["stripe_json"], "classes": ["collapse"]}),
        ]

    @admin.display(description="About")
    def about(self, event: Event) -> str:
        """The event's object, linked to where the back office lists it (once it has been copied there)."""
        obj = (event.data or {}).get("object") or {}
        if not isinstance(obj.get("id"), str):
            return "—"
        listed = {"checkout.session": "session", "charge": "charge"}.get(obj.get("object", ""))
        if listed is None:
            return truncated(obj["id"], 24)
        url = reverse(f"admin:djstripe_{listed}_changelist")
        return format_html('<a href="{}?q={}">{}</a>', url, obj["id"], truncated(obj["id"], 24))

    @admin.display(description="About")
    def about_full(self, event: Event) -> str:
        obj = (event.data or {}).get("object") or {}
        return f"{obj.get('object') or 'object'} {obj.get('id') or '(no id)'}"

    @admin.display(description="Type", ordering="type")
    def event_type(self, event: Event) -> str:
        return event.type

    @admin.display(description="API version")
    def version(self, event: Event) -> str:
        return event.api_version or "—"

    @admin.display(description="Request")
    def request(self, event: Event) -> str:
        # Stripe names the API request that caused the event; none for what Stripe did on its own.
        return event.request_id or "— (made by Stripe, not by an API request)"

    @admin.display(description="Cohorta outcome")
    def outcome(self, event: Event) -> str:
        outcome = getattr(event, "cohorta_outcome", None)
        if outcome is None:
            return "—"
        url = reverse("admin:billing_stripeeventoutcome_change", args=[outcome.pk])
        return format_html('<a href="{}">{}</a>', url, outcome.get_status_display())

    @admin.display(description="Deliveries", ordering="delivery_count")
    def deliveries(self, event: Event) -> str:
        url = reverse("admin:djstripe_webhookeventtrigger_changelist")
        return format_html('<a href="{}?q={}">{}</a>', url, event.id, event.delivery_count)


class DeliveryResultFilter(admin.SimpleListFilter):
    title = "result"
    parameter_name = "result"

    def lookups(self, request, model_admin):
        return [("processed", "Processed"), ("error", "Failed (error)"), ("refused", "Refused (signature)")]

    def queryset(self, request, queryset):
        match self.value():
            case "processed":
                return queryset.filter(valid=True, processed=True, exception="")
            case "error":
                return queryset.exclude(exception="")
            case "refused":
                return queryset.filter(valid=False)
        return queryset


class ReceivedFilter(admin.DateFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "received"


class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every POST to the webhook that passed the signature check, as dj-stripe logged it."""

    list_per_page = 50
    list_display = ["received", "event_link", "event_type", "result", "sender"]
    list_filter = [DeliveryResultFilter, ("created", ReceivedFilter)]
    list_select_related = ["event"]
    search_fields = ["event__id", "event__type", "exception"]
    ordering = ["-created", "-id"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["received", "event_link", "event_type", "result", "sender", "traceback_cell", "version"]}),
        ("As Stripe sent it", {"fields": ["body_cell"], "classes": ["collapse"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    def object_title(self, trigger: WebhookEventTrigger) -> str:
        return f"Delivery of {trigger.event_id or 'an unstored event'} at {short_datetime(trigger.created)}"

    @admin.display(description="Received", ordering="created")
    def received(self, trigger: WebhookEventTrigger) -> str:
        return short_datetime(trigger.created)

    @admin.display(description="Event", ordering="event__id")
    def event_link(self, trigger: WebhookEventTrigger) -> str:
        return admin_link(trigger.event)

    @admin.display(description="Type", ordering="event__type")
    def event_type(self, trigger: WebhookEventTrigger) -> str:
        return trigger.event.type if trigger.event else "—"

    @admin.display(description="Result")
    def result(self, trigger: WebhookEventTrigger) -> str:
        if not trigger.valid:
            return "Refused (signature)"
        if trigger.exception:
            return format_html('<strong style="color: #b91c1c">⚠ {}</strong>', truncated(trigger.exception, 60))
        return "Processed" if trigger.processed else "Received"

    @admin.display(description="Sent from", ordering="remote_ip")
    def sender(self, trigger: WebhookEventTrigger) -> str:
        return trigger.remote_ip or "—"

    @admin.display(description="dj-stripe version")
    def version(self, trigger: WebhookEventTrigger) -> str:
        return trigger.djstripe_version or "—"

    @admin.display(description="Traceback")
    def traceback_cell(self, trigger: WebhookEventTrigger) -> str:
        if not trigger.traceback:
            return "—"
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', trigger.traceback)

    @admin.display(description="Body")
    def body_cell(self, trigger: WebhookEventTrigger) -> str:
        try:
            text = json.dumps(json.loads(trigger.body), indent=2, sort_keys=True)
        except ValueError:
            text = trigger.body
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class APIKeyAdmin(ReadOnlyAdmin):
    """The secret key ``stripe_setup`` recorded, shown redacted: it is set in the environment, not here."""

    list_display = ["key", "kind", "mode", "account"]
    fields = readonly_fields = ("key", "kind", "mode", "account")
    list_select_related = ["djstripe_owner_account"]

    def object_title(self, key: APIKey) -> str:
        return f"API key {key.secret_redacted}"

    @admin.display(description="Key")
    def key(self, key: APIKey) -> str:
        return key.secret_redacted

    @admin.display(description="Type", ordering="type")
    def kind(self, key: APIKey) -> str:
        return stripe_word(key.type)

    @admin.display(description="Mode", ordering="livemode")
    def mode(self, key: APIKey) -> str:
        return "Live" if key.livemode else "Test"

    @admin.display(description="Stripe account")
    def account(self, key: APIKey) -> str:
        return admin_link(key.djstripe_owner_account, str(key.djstripe_owner_account or ""))


class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Cohorta's record of the endpoint made in Stripe's dashboard, written by ``manage.py stripe_setup``
    (which also sets the secret that verifies deliveries; never shown)."""

    list_display = ["endpoint_url", "state", "event_count", "mode"]
    fields = readonly_fields = ("endpoint_url", "state", "events", "checks", "mode", "managed_by")

    def object_title(self, endpoint: WebhookEndpoint) -> str:
        return f"Webhook endpoint {endpoint.url or endpoint.id}"

    @admin.display(description="URL")
    def endpoint_url(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.url or "— (run manage.py stripe_setup --site-url https://<your host>)"

    @admin.display(description="State", ordering="status")
    def state(self, endpoint: WebhookEndpoint) -> str:
        return stripe_word(endpoint.status)

    @admin.display(description="Events")
    def event_count(self, endpoint: WebhookEndpoint) -> int:
        return len(endpoint.enabled_events or [])

    @admin.display(description="Events sent")
    def events(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.enabled_events or []) or "—"

    @admin.display(description="Checks")
    def checks(self, endpoint: WebhookEndpoint) -> str:
        return f"{stripe_word(endpoint.djstripe_validation_method)}, {endpoint.djstripe_tolerance} s tolerance"

    @admin.display(description="Mode", ordering="livemode")
    def mode(self, endpoint: WebhookEndpoint) -> str:
        return {True: "Live", False: "Test"}.get(endpoint.livemode, "—")

    @admin.display(description="Managed by")
    def managed_by(self, endpoint: WebhookEndpoint) -> str:
        return (endpoint.metadata or {}).get("managed_by") or "—"


class OtherStripeObjectAdmin(StripeObjectAdmin):
    """The platform account, balance transactions, prices and products: what Stripe says, by id."""

    list_display = ["stripe_id", "summary", "mode", "created_at"]
    detail_fields = ("stripe_id", "summary")

    @admin.display(description="Summary")
    def summary(self, obj) -> str:
        return str(obj)


STRIPE_ADMINS = {
    Customer: CustomerAdmin,
    Session: SessionAdmin,
    PaymentIntent: PaymentIntentAdmin,
    Charge: ChargeAdmin,
    Refund: RefundAdmin,
    Event: EventAdmin,
    WebhookEventTrigger: WebhookDeliveryAdmin,
    Account: OtherStripeObjectAdmin,
    BalanceTransaction: OtherStripeObjectAdmin,
    Price: OtherStripeObjectAdmin,
    Product: OtherStripeObjectAdmin,
    APIKey: APIKeyAdmin,
    WebhookEndpoint: WebhookEndpointAdmin,
}


def stripe_admin_register(site: admin.AdminSite) -> None:
    """Cohorta's admins for the dj-stripe models it uses; dj-stripe's others are dropped from the back office."""
    stripe_admin_names()
    for model in list(apps.get_app_config("djstripe").get_models()):
        if site.is_registered(model):
            site.unregister(model)
    for model, model_admin in STRIPE_ADMINS.items():
        site.register(model, model_admin)
