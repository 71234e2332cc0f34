from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from billing.models import CheckoutSession, CheckoutStatus, CreditPack, CreditTransaction
from cohorta.core.models import get_app_settings


def ledger_for_user(*, user) -> QuerySet[CreditTransaction]:
    """The user's credit movements, newest first."""
    return CreditTransaction.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


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
