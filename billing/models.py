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
