import uuid
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LedgerIsAppendOnly(Exception):
    """Raised when code tries to change or remove a ledger row: corrections are new rows."""


class CreditTransactionKind(models.TextChoices):
    TRIAL = "trial", "Trial"
    GRANT = "grant", "Grant"
    PURCHASE = "purchase", "Purchase"
    SPEND = "spend", "Spend"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


CREDITING_KINDS = (
    CreditTransactionKind.TRIAL,
    CreditTransactionKind.GRANT,
    CreditTransactionKind.PURCHASE,
    CreditTransactionKind.REFUND,
)


class CreditTransactionQuerySet(models.QuerySet):
    # Bulk writes would bypass save()/delete(). Deleting a user still works: Django's
    # SET_NULL cascade goes through the base manager, not this queryset.
    def update(self, **kwargs):
        raise LedgerIsAppendOnly("Credit transactions cannot be updated; record an adjustment instead.")

    def delete(self):
        raise LedgerIsAppendOnly("Credit transactions cannot be deleted; record an adjustment instead.")


class CreditTransaction(models.Model):
    """One movement of a user's credits. Append-only: written by billing.services only.

    ``balance_after`` is the user's balance right after this row, so the ledger
    can be checked against ``User.credit_balance`` at any time.
    """

    Kind = CreditTransactionKind

    # SET_NULL: the rows outlive a deleted account, for accounting; user_email keeps who it was.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="credit_transactions"
    )
    user_email = models.CharField(max_length=254, blank=True)
    kind = models.CharField(max_length=20, choices=CreditTransactionKind.choices)
    delta = models.IntegerField(help_text="Credits added (positive) or removed (negative).")
    balance_after = models.PositiveIntegerField()
    reference = models.CharField(
        max_length=200, blank=True, help_text='What it was for, e.g. "focusgroup:12" or "checkout:cs_…".'
    )
    description = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    refund_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="credit_transactions_created",
        help_text="The admin who granted or adjusted, if any.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = CreditTransactionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="billing_ct_user_created")]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="billing_ct_delta_not_zero"),
            models.CheckConstraint(
                condition=Q(kind=CreditTransactionKind.ADJUSTMENT)
                | Q(kind=CreditTransactionKind.SPEND, delta__lt=0)
                | Q(kind__in=CREDITING_KINDS, delta__gt=0),
                name="billing_ct_delta_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind=CreditTransactionKind.REFUND, refund_of__isnull=False)
                | (~Q(kind=CreditTransactionKind.REFUND) & Q(refund_of__isnull=True)),
                name="billing_ct_refund_has_spend",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.delta:+d} for {self.user_email or 'deleted user'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerIsAppendOnly("Credit transactions cannot be changed; record an adjustment instead.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerIsAppendOnly("Credit transactions cannot be deleted; record an adjustment instead.")

    @property
    def amount(self) -> int:
        return abs(self.delta)


# --- packs and Stripe ------------------------------------------------------------------

# Stripe amounts are in the currency's smallest unit; these currencies have none smaller.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A price as Stripe's integer ``unit_amount`` (cents for USD, yen for JPY)."""
    factor = 1 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 100
    return int((amount * factor).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor_units(amount: int, currency: str) -> Decimal:
    factor = 1 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 100
    return (Decimal(amount) / factor).quantize(Decimal("1") if factor == 1 else Decimal("0.01"))


class CreditPack(models.Model):
    """A bundle of credits on sale. Edited in the admin; deactivate rather than delete (purchases name it)."""

    name = models.CharField(max_length=60)
    credits = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=10, decimal_places=2, help_text="What the customer pays, e.g. 49.00.")
    currency = models.CharField(max_length=3, default="usd", help_text="ISO code, lower case (usd, eur…).")
    active = models.BooleanField(default=True, help_text="Shown on the Billing page and sold.")
    stripe_price_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="A Stripe Price (price_…) to sell this pack with. Empty: price and currency above are sent.",
    )
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # Not a field: set by the Billing page on each pack it shows (the idempotency key of one Buy click).
    attempt_id: uuid.UUID

    class Meta:
        ordering = ["sort_order", "price", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="billing_pack_credits_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="billing_pack_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.credits} credits, {self.price} {self.currency.upper()})"

    def save(self, *args, **kwargs):
        self.currency = (self.currency or "usd").lower()
        super().save(*args, **kwargs)

    @property
    def unit_amount(self) -> int:
        return to_minor_units(self.price, self.currency)


class CheckoutAttempt(models.Model):
    """One click on Buy. Its id is the Stripe idempotency key, so a double submit or a retry
    of the same click gets the same Checkout Session instead of a second one.

    Credits, price and currency are the pack's at the click, copied here: what a checkout grants
    and costs comes from this record (through its ``CheckoutSession``), never from the client or
    from what a Stripe event claims.
    """

    id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="checkout_attempts")
    pack = models.ForeignKey(CreditPack, on_delete=models.PROTECT, related_name="+")
    credits = models.PositiveIntegerField(help_text="The pack's credits when the buyer clicked Buy.")
    amount = models.PositiveIntegerField(
        help_text="The pack's price when the buyer clicked Buy, in the currency's smallest unit (cents)."
    )
    currency = models.CharField(max_length=3, help_text="The pack's currency when the buyer clicked Buy.")
    tries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.id)

    @property
    def idempotency_key(self) -> str:
        return f"checkout:{self.id}"

    @property
    def price(self) -> Decimal:
        return from_minor_units(self.amount, self.currency)

    def matches_pack(self, pack: CreditPack) -> bool:
        """The pack still sells what this attempt was made for."""
        return (self.pack_id, self.credits, self.amount, self.currency) == (
            pack.pk,
            pack.credits,
            pack.unit_amount,
            pack.currency,
        )


class CheckoutStatus(models.TextChoices):
    PENDING = "pending", "Awaiting payment"
    PROCESSING = "processing", "Payment processing"
    PAID = "paid", "Paid"
    FAILED = "failed", "Payment failed"
    EXPIRED = "expired", "Expired"


class CheckoutSession(models.Model):
    """A Stripe Checkout Session we created, with what it buys and costs.

    Credits come from the attempt's snapshot of the pack; amount and currency are what Stripe
    told us it will charge when we created the session (the attempt's price, or the pack's Stripe
    Price). Editing a pack later does not change what an open checkout grants, and a webhook is
    credited only if it paid exactly this amount in this currency.
    """

    Status = CheckoutStatus

    stripe_id = models.CharField(max_length=255, unique=True)
    # SET_NULL like the ledger: purchase records outlive a deleted account.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="checkout_sessions"
    )
    user_email = models.CharField(max_length=254, blank=True)
    attempt = models.OneToOneField(
        CheckoutAttempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="session"
    )
    pack = models.ForeignKey(CreditPack, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    pack_name = models.CharField(max_length=60, blank=True)
    credits = models.PositiveIntegerField()
    amount = models.PositiveIntegerField(help_text="In the currency's smallest unit (cents).")
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=20, choices=CheckoutStatus.choices, default=CheckoutStatus.PENDING)
    url = models.TextField(blank=True, help_text="Stripe's hosted checkout page.")
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True)
    receipt_url = models.TextField(blank=True)
    amount_refunded = models.PositiveIntegerField(default=0, help_text="Smallest unit, as Stripe last reported.")
    credits_clawed_back = models.PositiveIntegerField(default=0, help_text="Taken back for refunds.")
    clawback_shortfall = models.PositiveIntegerField(
        default=0, help_text="Credits a refund should have taken back but the balance no longer had."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="billing_cs_user_created")]

    def __str__(self) -> str:
        return f"{self.pack_name or 'Credits'} for {self.user_email or 'unknown user'} ({self.stripe_id})"

    @property
    def price(self) -> Decimal:
        return from_minor_units(self.amount, self.currency)

    @property
    def is_final(self) -> bool:
        return self.status in (CheckoutStatus.PAID, CheckoutStatus.FAILED, CheckoutStatus.EXPIRED)

    @property
    def refunded(self) -> bool:
        return self.amount_refunded > 0


class StripeEventStatus(models.TextChoices):
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    UNMATCHED = "unmatched", "Unmatched"
    FAILED = "failed", "Failed"
    # A payment event Cohorta refused: nothing was credited, an operator should look.
    UNKNOWN_CHECKOUT = "unknown_checkout", "Unknown checkout"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    CURRENCY_MISMATCH = "currency_mismatch", "Currency mismatch"
    NOT_PAID = "not_paid", "Not paid"


REFUSED_EVENT_STATUSES = (
    StripeEventStatus.UNKNOWN_CHECKOUT,
    StripeEventStatus.AMOUNT_MISMATCH,
    StripeEventStatus.CURRENCY_MISMATCH,
    StripeEventStatus.NOT_PAID,
)


class StripeEventOutcome(models.Model):
    """What Cohorta did with one verified Stripe event that moves money, once per event id.

    dj-stripe keeps the event itself (``djstripe.Event``) and every delivery of it
    (``djstripe.WebhookEventTrigger``, with the traceback when processing raised); this row says
    what the event meant to the ledger: credited, refused and why, or waiting for its checkout.
    """

    Status = StripeEventStatus

    event = models.OneToOneField(
        "djstripe.Event", to_field="id", on_delete=models.CASCADE, related_name="cohorta_outcome"
    )
    # The Stripe event id (``evt_…``). Declared because dj-stripe is untyped: the plugin cannot add it.
    event_id: str
    type = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=20, choices=StripeEventStatus.choices, db_index=True)
    error = models.TextField(blank=True, help_text="Why it was refused, failed, ignored or matched no account.")
    checkout_session = models.ForeignKey(
        CheckoutSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    clawback_shortfall = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "Stripe event outcome"

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    @property
    def payload(self) -> dict:
        """The verified event as Stripe sent it (the parts billing reads)."""
        return {"id": self.event_id, "type": self.type, "data": self.event.data}

    @property
    def data_object(self) -> dict:
        return (self.event.data or {}).get("object") or {}

    @property
    def received_count(self) -> int:
        """Deliveries of this event that passed the signature check (dj-stripe logs each one)."""
        return self.event.webhookeventtrigger_set.filter(valid=True).count()


class StripeObjectMirror(models.Model):
    """The newest event whose Stripe object was copied into dj-stripe's tables, per object.

    Mirror tasks for one object lock this row and take turns; events are ordered by Stripe's
    ``created`` (whole seconds), then by arrival. An older event retried late never overwrites
    what a newer one wrote, and a replayed event copies nothing twice.
    """

    stripe_id = models.CharField(max_length=255, unique=True)
    object_type = models.CharField(max_length=50)
    event = models.ForeignKey(
        "djstripe.Event",
        to_field="id",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The newest event copied.",
    )
    # As on StripeEventOutcome: the Stripe event id, declared because dj-stripe is untyped.
    event_id: str | None
    mirrored_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the last copy failed, if it did.")
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Stripe mirror state"

    def __str__(self) -> str:
        return f"{self.object_type} {self.stripe_id}"
