import re

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Concat

from billing.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditPack,
    CreditTransaction,
    CreditTransactionKind,
    StripeEventOutcome,
    StripeEventStatus,
)
from cohorta.core.models import get_app_settings
from cohorta.jobs.models import ACTIVE_STATES, Job

# Persona generation reserves its credits up front (reference "brief:<id>", the job's target) and gives back
# what it does not deliver when its job ends: until then the spend is a reservation.
_RESERVING_JOB_KIND = "persona_generation"
_RESERVING_REFERENCE = "brief:"
# Rows written before that was read from the job said so in their text, for good; so did "1 personas".
_OLD_RESERVED_SUFFIX = " (reserved)"
_ONE_PERSONAS = re.compile(r"\bGenerate 1 personas\b")


def ledger_for_user(*, user) -> QuerySet[CreditTransaction]:
    """The user's credit movements, newest first. ``reserved``: a spend whose work is still running, so that
    whatever it does not deliver may still come back."""
    running = Job.objects.filter(
        owner_id=OuterRef("user_id"), kind=_RESERVING_JOB_KIND, state__in=ACTIVE_STATES
    ).annotate(ledger_reference=Concat(Value(_RESERVING_REFERENCE), "target_id"))
    return (
        CreditTransaction.objects.filter(user_id=user.pk)
        .annotate(reserved=Exists(running.filter(ledger_reference=OuterRef("reference"))))
        .order_by("-created_at", "-id")
    )


def ledger_description(entry: CreditTransaction) -> str:
    """A ledger row's description as it reads now: whether a spend is still a reservation is ``reserved``
    (``ledger_for_user``), not words stored in the row when it was written."""
    text = entry.description or ""
    if entry.kind == CreditTransactionKind.SPEND and text.endswith(_OLD_RESERVED_SUFFIX):
        text = text.removesuffix(_OLD_RESERVED_SUFFIX)
    return _ONE_PERSONAS.sub("Generate 1 persona", text) or entry.get_kind_display()


def credits_balance(*, user) -> int:
    """The balance as stored now, not as cached on a possibly stale user object."""
    return get_user_model().objects.filter(pk=user.pk).values_list("credit_balance", flat=True).first() or 0


def credit_costs() -> dict[str, int]:
    """What AI work costs in credits, as set in the admin."""
    app = get_app_settings()
    return {
        "persona": app.persona_credit_cost,
        "session_run": app.session_run_credit_cost,
        "persona_modify": app.persona_modify_credit_cost,
    }


def ledger_is_consistent(*, user) -> bool:
    """The deltas add up to the balance, and each row's balance_after is the running total.

    Rows are checked in id order: ids are assigned while the user's row lock is
    held, so for one user they follow the order the balance changed in.
    """
    balance = credits_balance(user=user)
    rows = CreditTransaction.objects.filter(user_id=user.pk).order_by("id").values_list("delta", "balance_after")
    running = 0
    for delta, balance_after in rows.iterator():
        running += delta
        if running != balance_after:
            return False
    return running == balance


def credit_packs_on_sale() -> QuerySet[CreditPack]:
    return CreditPack.objects.filter(active=True).order_by("sort_order", "price", "id")


def purchases_for_user(*, user) -> QuerySet[CheckoutSession]:
    """Checkouts that got as far as a payment: abandoned and expired ones are noise here."""
    return (
        CheckoutSession.objects.filter(user_id=user.pk)
        .exclude(status__in=[CheckoutStatus.PENDING, CheckoutStatus.EXPIRED])
        .order_by("-created_at", "-id")
    )


def checkout_session_for_user(*, user, session_id: str) -> CheckoutSession | None:
    """The user's own checkout, or None: someone else's session id reveals nothing."""
    return CheckoutSession.objects.filter(user_id=user.pk, stripe_id=session_id).first()


def stripe_event_status(*, event_id: str) -> str:
    """What a stored Stripe event did: its outcome's status, or "ignored" for the types Cohorta does not act on."""
    outcome = StripeEventOutcome.objects.filter(event_id=event_id).values_list("status", flat=True).first()
    return outcome or StripeEventStatus.IGNORED
