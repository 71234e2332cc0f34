"""Writes for credits. The only code that changes ``User.credit_balance``.

Every change is one conditional UPDATE of the balance plus one ledger row, in
one transaction (a savepoint when the caller already holds one). The UPDATE
takes the user's row lock, so changes to one user's credits are serialised:
``balance_after`` is read while the lock is held and is exact, and a balance
can never go below zero (the UPDATE matches no row instead).

Each change carries an idempotency key. A repeated key returns the first row
and changes nothing, also when both calls race: the loser hits the unique
constraint, its savepoint (with its UPDATE) rolls back, and it returns the
winner's row.
"""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing.models import CreditTransaction, CreditTransactionKind
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits

GRANT_KINDS = (CreditTransactionKind.TRIAL, CreditTransactionKind.GRANT, CreditTransactionKind.PURCHASE)


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def _by_key(idempotency_key: str) -> CreditTransaction | None:
    return CreditTransaction.objects.filter(idempotency_key=idempotency_key).order_by().first()


def _check_positive(amount: int, name: str = "amount") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"{name} must be a positive integer, got {amount!r}")


def _check_key(idempotency_key: str) -> None:
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("An idempotency key of 1 to 200 characters is required")


def _replay(existing: CreditTransaction, *, user_id, kind: str, refund_of=None) -> CreditTransaction:
    """The first transaction made with this key, if it was the same operation; else a 409."""
    same = existing.user_id == user_id and existing.kind == kind
    if refund_of is not None:
        same = same and existing.refund_of_id == refund_of.pk
    if not same:
        raise ApplicationError(
            "This idempotency key was already used for a different credit operation.",
            code="idempotency_conflict",
            status_code=409,
        )
    return existing


class _Shortfall(Exception):
    """The conditional UPDATE matched no row: not enough credits, or no such user."""


def _record(
    *,
    user,
    kind: str,
    delta: int,
    idempotency_key: str,
    reference: str = "",
    description: str = "",
    created_by=None,
    refund_of: CreditTransaction | None = None,
    on_shortfall: Callable[[int], Exception] | None = None,
    check_locked: Callable[[], None] | None = None,
) -> CreditTransaction:
    existing = _by_key(idempotency_key)
    if existing is not None:
        return _replay(existing, user_id=user.pk, kind=kind, refund_of=refund_of)

    User = get_user_model()  # noqa: N806
    try:
        with transaction.atomic():
            rows = User.objects.filter(pk=user.pk)
            if delta < 0:
                rows = rows.filter(credit_balance__gte=-delta)
            if rows.update(credit_balance=F("credit_balance") + delta) != 1:
                raise _Shortfall
            # From here until commit this transaction holds the user's row lock.
            if check_locked is not None:
                check_locked()
            balance_after = User.objects.filter(pk=user.pk).values_list("credit_balance", flat=True).get()
            entry = CreditTransaction.objects.create(
                user_id=user.pk,
                user_email=user.email,
                kind=kind,
                delta=delta,
                balance_after=balance_after,
                reference=reference[:200],
                description=description[:255],
                idempotency_key=idempotency_key,
                refund_of=refund_of,
                created_by=created_by,
                created_at=timezone.now(),
            )
    except (IntegrityError, ApplicationError, _Shortfall) as exc:
        # A concurrent call with the same key may have won (our savepoint is
        # rolled back by now): then this call is a replay, not a failure.
        existing = _by_key(idempotency_key)
        if existing is not None:
            return _replay(existing, user_id=user.pk, kind=kind, refund_of=refund_of)
        if isinstance(exc, _Shortfall):
            balance = User.objects.filter(pk=user.pk).values_list("credit_balance", flat=True).first()
            if balance is None or on_shortfall is None:
                raise ApplicationError(
                    "This account no longer exists.", code="account_missing", status_code=404
                ) from None
            raise on_shortfall(balance) from None
        raise
    user.credit_balance = balance_after
    return entry


def credits_spend(
    *, user, amount: int, idempotency_key: str, reference: str = "", description: str = ""
) -> CreditTransaction:
    """Take ``amount`` credits from the user, or raise InsufficientCredits (HTTP 402) and change nothing."""
    _check_positive(amount)
    _check_key(idempotency_key)

    def shortfall(balance: int) -> Exception:
        return InsufficientCredits(
            f"This needs {_credits(amount)}; you have {balance}. Buy credits on the Billing page.",
            extra={"required": amount, "balance": balance},
        )

    return _record(
        user=user,
        kind=CreditTransactionKind.SPEND,
        delta=-amount,
        idempotency_key=idempotency_key,
        reference=reference,
        description=description,
        on_shortfall=shortfall,
    )


def credits_grant(
    *,
    user,
    amount: int,
    kind: str = CreditTransactionKind.GRANT,
    idempotency_key: str,
    reference: str = "",
    description: str = "",
    created_by=None,
) -> CreditTransaction:
    """Add credits: a trial, an admin grant or a purchase."""
    _check_positive(amount)
    _check_key(idempotency_key)
    if kind not in GRANT_KINDS:
        raise ValueError(f"credits_grant records trial, grant or purchase, not {kind!r}")
    return _record(
        user=user,
        kind=kind,
        delta=amount,
        idempotency_key=idempotency_key,
        reference=reference,
        description=description,
        created_by=created_by,
    )


def credits_adjust(*, user, delta: int, idempotency_key: str, description: str, created_by) -> CreditTransaction:
    """An operator's correction, up or down. It can take a balance to zero, never below."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValueError(f"delta must be a non-zero integer, got {delta!r}")
    _check_key(idempotency_key)

    def shortfall(balance: int) -> Exception:
        return ApplicationError(
            f"This adjustment removes {_credits(-delta)}, but the balance is {balance}. "
            "A balance cannot go below zero.",
            code="balance_would_go_negative",
            status_code=409,
            extra={"delta": delta, "balance": balance},
        )

    return _record(
        user=user,
        kind=CreditTransactionKind.ADJUSTMENT,
        delta=delta,
        idempotency_key=idempotency_key,
        description=description,
        created_by=created_by,
        on_shortfall=shortfall,
    )


def credits_clawback(
    *, user, amount: int, idempotency_key: str, reference: str = "", description: str = ""
) -> tuple[CreditTransaction | None, int]:
    """Take back up to ``amount`` credits for a refunded purchase: what the balance has, never more.

    Returns the adjustment row (None when the balance was 0) and the shortfall, the credits
    that were owed but already spent. Callers keep their own record of what was owed
    (a row with no credits to take writes no ledger row, so the key alone cannot dedupe it).
    """
    _check_positive(amount)
    _check_key(idempotency_key)
    existing = _by_key(idempotency_key)
    if existing is not None:
        entry = _replay(existing, user_id=user.pk, kind=CreditTransactionKind.ADJUSTMENT)
        return entry, max(amount - entry.amount, 0)
    User = get_user_model()  # noqa: N806
    with transaction.atomic():
        # Locking first makes the balance we read the one the UPDATE below sees: a spend
        # racing this clawback waits, so "take what is there" can never undershoot to an error.
        balance = User.objects.select_for_update().filter(pk=user.pk).values_list("credit_balance", flat=True).first()
        if balance is None:
            raise ApplicationError("This account no longer exists.", code="account_missing", status_code=404)
        take = min(balance, amount)
        if take == 0:
            return None, amount
        entry = _record(
            user=user,
            kind=CreditTransactionKind.ADJUSTMENT,
            delta=-take,
            idempotency_key=idempotency_key,
            reference=reference,
            description=description,
        )
    return entry, amount - entry.amount


def _refunded(spend: CreditTransaction) -> int:
    return spend.refunds.aggregate(total=Sum("delta"))["total"] or 0


def credits_refund_unused(*, spend_key: str, kept: int, idempotency_key: str, description: str) -> int:
    """Of the spend recorded under ``spend_key`` (a reservation for work done piece by piece), refund what is
    neither ``kept`` (the credits of the pieces delivered) nor refunded already. Idempotent (the key);
    returns the credits refunded now, 0 when nothing is left or there was no such spend."""
    spend = _by_key(spend_key)
    if spend is None or spend.kind != CreditTransactionKind.SPEND:
        return 0
    rest = spend.amount - _refunded(spend) - kept
    if rest <= 0:
        return 0
    credits_refund(spend=spend, amount=rest, idempotency_key=idempotency_key, description=description)
    return rest


def credits_refund(
    *, spend: CreditTransaction, amount: int | None = None, idempotency_key: str, description: str = ""
) -> CreditTransaction:
    """Give back all (``amount=None``) or part of a spend. Refunds of one spend never exceed it."""
    _check_key(idempotency_key)
    if spend.kind != CreditTransactionKind.SPEND:
        raise ValueError("Only spends can be refunded")
    if amount is not None:
        _check_positive(amount)
    # Replays first: repeating a full refund must return it, not find nothing left to refund.
    existing = _by_key(idempotency_key)
    if existing is not None:
        return _replay(existing, user_id=spend.user_id, kind=CreditTransactionKind.REFUND, refund_of=spend)
    if spend.user_id is None:
        raise ApplicationError("The account this spend belonged to no longer exists.", code="account_missing")

    spent = spend.amount
    if amount is None:
        amount = spent - _refunded(spend)
    if amount <= 0:
        raise ApplicationError(
            "This spend has already been fully refunded.", code="refund_exceeds_spend", status_code=409
        )

    def within_spend() -> None:
        # Runs under the user's row lock, which every refund of this spend also
        # takes, so concurrent refunds with different keys cannot overshoot.
        refunded = _refunded(spend)
        if refunded + amount > spent:
            raise ApplicationError(
                f"A refund of {_credits(amount)} would exceed the spend: {spent} spent, {refunded} already refunded.",
                code="refund_exceeds_spend",
                status_code=409,
                extra={"spent": spent, "refunded": refunded, "requested": amount},
            )

    return _record(
        user=spend.user,
        kind=CreditTransactionKind.REFUND,
        delta=amount,
        idempotency_key=idempotency_key,
        reference=spend.reference,
        description=description or f"Refund: {spend.description or spend.reference or 'credits'}",
        refund_of=spend,
        check_locked=within_spend,
    )


def credits_grant_trial(*, user) -> CreditTransaction | None:
    """The free trial credits, once per user; nothing when the trial is set to 0 credits."""
    amount = get_app_settings().trial_credits
    if amount <= 0:
        return None
    return credits_grant(
        user=user,
        amount=amount,
        kind=CreditTransactionKind.TRIAL,
        idempotency_key=f"trial:{user.pk}",
        reference=f"user:{user.pk}",
        description="Free trial credits",
    )
