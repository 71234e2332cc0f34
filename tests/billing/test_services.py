import pytest
from django.db import transaction

from billing import selectors
from billing.models import CreditTransaction, LedgerIsAppendOnly
from billing.services import credits_adjust, credits_grant, credits_refund, credits_spend
from cohorta.errors import ApplicationError, InsufficientCredits
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

Kind = CreditTransaction.Kind


def _fund(user, amount: int, key: str = "fund") -> CreditTransaction:
    return credits_grant(user=user, amount=amount, idempotency_key=f"{key}:{user.pk}", description="Top-up")


def _assert_consistent(user, balance: int) -> None:
    assert selectors.credits_balance(user=user) == balance
    assert sum(CreditTransaction.objects.filter(user=user).values_list("delta", flat=True)) == balance
    assert selectors.ledger_is_consistent(user=user)


def test_grant_then_spend_keeps_balance_after_exact(owner):
    grant = _fund(owner, 10)
    assert (grant.kind, grant.delta, grant.balance_after) == (Kind.GRANT, 10, 10)
    spend = credits_spend(
        user=owner, amount=3, idempotency_key="focusgroup:1", reference="focusgroup:1", description="Session run"
    )
    assert (spend.kind, spend.delta, spend.balance_after) == (Kind.SPEND, -3, 7)
    assert spend.user == owner and spend.user_email == "owner@example.com" and spend.reference == "focusgroup:1"
    assert owner.credit_balance == 7  # the caller's object is kept in step
    _assert_consistent(owner, 7)


def test_spend_can_use_the_whole_balance(owner):
    _fund(owner, 5)
    assert credits_spend(user=owner, amount=5, idempotency_key="all").balance_after == 0
    _assert_consistent(owner, 0)


def test_insufficient_credits_changes_nothing(owner):
    _fund(owner, 3)
    with pytest.raises(InsufficientCredits) as caught:
        credits_spend(user=owner, amount=40, idempotency_key="session-run:9")
    error = caught.value
    assert error.status_code == 402 and error.code == "insufficient_credits"
    assert error.message == "This needs 40 credits; you have 3. Buy credits on the Billing page."
    assert error.extra == {"required": 40, "balance": 3}
    assert CreditTransaction.objects.count() == 1
    assert not CreditTransaction.objects.filter(idempotency_key="session-run:9").exists()
    _assert_consistent(owner, 3)


def test_insufficient_credits_with_an_empty_balance(owner):
    with pytest.raises(InsufficientCredits, match="This needs 1 credit; you have 0"):
        credits_spend(user=owner, amount=1, idempotency_key="k")
    assert not CreditTransaction.objects.exists()


def test_insufficient_credits_inside_an_outer_transaction_leaves_it_usable(owner):
    _fund(owner, 2)
    with transaction.atomic():
        with pytest.raises(InsufficientCredits):
            credits_spend(user=owner, amount=5, idempotency_key="too-much")
        spend = credits_spend(user=owner, amount=2, idempotency_key="fits")
    assert spend.balance_after == 0
    _assert_consistent(owner, 0)


def test_same_key_twice_is_one_spend_returning_the_first(owner):
    _fund(owner, 10)
    first = credits_spend(user=owner, amount=4, idempotency_key="session-run:7")
    again = credits_spend(user=owner, amount=4, idempotency_key="session-run:7")
    assert again == first and again.balance_after == 6
    assert CreditTransaction.objects.filter(kind=Kind.SPEND).count() == 1
    _assert_consistent(owner, 6)


def test_a_replay_succeeds_even_when_the_balance_could_no_longer_pay(owner):
    _fund(owner, 4)
    first = credits_spend(user=owner, amount=4, idempotency_key="session-run:8")
    assert credits_spend(user=owner, amount=4, idempotency_key="session-run:8") == first
    _assert_consistent(owner, 0)


def test_key_reused_by_another_user_is_a_conflict(owner, other_user):
    _fund(owner, 10)
    _fund(other_user, 10)
    credits_spend(user=owner, amount=1, idempotency_key="shared-key")
    with pytest.raises(ApplicationError) as caught:
        credits_spend(user=other_user, amount=1, idempotency_key="shared-key")
    assert caught.value.status_code == 409 and caught.value.code == "idempotency_conflict"
    _assert_consistent(other_user, 10)


def test_key_reused_for_another_kind_is_a_conflict(owner):
    _fund(owner, 10, key="k")
    with pytest.raises(ApplicationError) as caught:
        credits_spend(user=owner, amount=1, idempotency_key=f"k:{owner.pk}")
    assert caught.value.code == "idempotency_conflict"
    _assert_consistent(owner, 10)


class _LosesTheRace:
    """Makes the first idempotency look-up miss, as when a concurrent call with the
    same key commits between our look-up and our insert."""

    def __init__(self, monkeypatch) -> None:
        self.missed = False
        manager = CreditTransaction.objects
        real_filter = manager.filter

        def filter_(*args, **kwargs):
            queryset = real_filter(*args, **kwargs)
            if "idempotency_key" in kwargs and not self.missed:
                self.missed = True
                return queryset.none()
            return queryset

        monkeypatch.setattr(manager, "filter", filter_)


def test_losing_a_same_key_race_returns_the_winner_and_rolls_back_only_its_savepoint(owner, monkeypatch):
    _fund(owner, 10)
    winner = credits_spend(user=owner, amount=3, idempotency_key="race")
    with transaction.atomic():
        _LosesTheRace(monkeypatch)
        loser = credits_spend(user=owner, amount=3, idempotency_key="race")
        assert loser == winner
        # The outer transaction is still usable after the unique violation.
        credits_spend(user=owner, amount=1, idempotency_key="after-race")
    assert CreditTransaction.objects.filter(kind=Kind.SPEND).count() == 2
    _assert_consistent(owner, 6)


def test_losing_a_same_key_race_when_the_winner_emptied_the_balance(owner, monkeypatch):
    _fund(owner, 3)
    winner = credits_spend(user=owner, amount=3, idempotency_key="race")
    _LosesTheRace(monkeypatch)
    assert credits_spend(user=owner, amount=3, idempotency_key="race") == winner
    _assert_consistent(owner, 0)


def test_grant_is_idempotent_and_records_who_granted(owner, staff_user):
    first = credits_grant(user=owner, amount=25, idempotency_key="support:1", created_by=staff_user)
    again = credits_grant(user=owner, amount=25, idempotency_key="support:1", created_by=staff_user)
    assert again == first and first.created_by == staff_user
    _assert_consistent(owner, 25)


def test_purchase_is_a_grant_kind(owner):
    row = credits_grant(user=owner, amount=50, kind=Kind.PURCHASE, idempotency_key="checkout:cs_1")
    assert row.kind == Kind.PURCHASE


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_amounts_must_be_positive_integers(owner, amount):
    with pytest.raises(ValueError):
        credits_spend(user=owner, amount=amount, idempotency_key="k")
    with pytest.raises(ValueError):
        credits_grant(user=owner, amount=amount, idempotency_key="k")


def test_grant_refuses_spend_kinds_and_missing_keys(owner):
    with pytest.raises(ValueError):
        credits_grant(user=owner, amount=1, kind=Kind.SPEND, idempotency_key="k")
    with pytest.raises(ValueError):
        credits_grant(user=owner, amount=1, idempotency_key="")


def test_adjustments_up_and_down(owner, staff_user):
    _fund(owner, 10)
    up = credits_adjust(user=owner, delta=5, idempotency_key="adj:1", description="Goodwill", created_by=staff_user)
    down = credits_adjust(user=owner, delta=-15, idempotency_key="adj:2", description="Fix", created_by=staff_user)
    assert (up.balance_after, down.balance_after) == (15, 0)
    assert down.kind == Kind.ADJUSTMENT and down.created_by == staff_user
    _assert_consistent(owner, 0)


def test_a_negative_adjustment_cannot_go_below_zero(owner, staff_user):
    _fund(owner, 3)
    with pytest.raises(ApplicationError) as caught:
        credits_adjust(user=owner, delta=-4, idempotency_key="adj", description="Too much", created_by=staff_user)
    assert caught.value.status_code == 409 and caught.value.code == "balance_would_go_negative"
    assert "balance is 3" in caught.value.message
    _assert_consistent(owner, 3)


def test_adjustment_of_zero_is_refused(owner):
    with pytest.raises(ValueError):
        credits_adjust(user=owner, delta=0, idempotency_key="adj", description="", created_by=None)


def test_full_and_partial_refunds(owner):
    _fund(owner, 50)
    spend = credits_spend(user=owner, amount=40, idempotency_key="session-run:3", reference="focusgroup:3")
    part = credits_refund(spend=spend, amount=15, idempotency_key="refund:1", description="Run failed midway")
    rest = credits_refund(spend=spend, idempotency_key="refund:2")
    assert (part.delta, part.balance_after) == (15, 25)
    assert (rest.delta, rest.balance_after) == (25, 50)
    assert part.kind == Kind.REFUND and part.refund_of == spend and part.reference == "focusgroup:3"
    assert set(spend.refunds.all()) == {part, rest}
    _assert_consistent(owner, 50)


def test_refunding_more_than_was_spent_is_refused(owner):
    _fund(owner, 10)
    spend = credits_spend(user=owner, amount=4, idempotency_key="spend")
    with pytest.raises(ApplicationError) as caught:
        credits_refund(spend=spend, amount=5, idempotency_key="refund:a")
    assert caught.value.code == "refund_exceeds_spend"
    credits_refund(spend=spend, amount=3, idempotency_key="refund:b")
    with pytest.raises(ApplicationError, match="would exceed the spend"):
        credits_refund(spend=spend, amount=2, idempotency_key="refund:c")
    credits_refund(spend=spend, idempotency_key="refund:d")  # the 1 credit left
    with pytest.raises(ApplicationError, match="already been fully refunded"):
        credits_refund(spend=spend, idempotency_key="refund:e")
    assert spend.refunds.count() == 2
    _assert_consistent(owner, 10)


def test_refund_twice_with_the_same_key_is_one_refund(owner):
    _fund(owner, 10)
    spend = credits_spend(user=owner, amount=4, idempotency_key="spend")
    first = credits_refund(spend=spend, idempotency_key="refund:spend")
    assert credits_refund(spend=spend, idempotency_key="refund:spend") == first
    assert CreditTransaction.objects.filter(kind=Kind.REFUND).count() == 1
    _assert_consistent(owner, 10)


def test_refund_key_reused_for_another_spend_is_a_conflict(owner):
    _fund(owner, 10)
    one = credits_spend(user=owner, amount=2, idempotency_key="spend:1")
    two = credits_spend(user=owner, amount=2, idempotency_key="spend:2")
    credits_refund(spend=one, idempotency_key="refund")
    with pytest.raises(ApplicationError) as caught:
        credits_refund(spend=two, idempotency_key="refund")
    assert caught.value.code == "idempotency_conflict"


def test_only_spends_can_be_refunded(owner):
    grant = _fund(owner, 10)
    with pytest.raises(ValueError):
        credits_refund(spend=grant, idempotency_key="refund")


def test_ledger_rows_cannot_be_changed_or_deleted(owner):
    row = _fund(owner, 10)
    row.delta = 1000
    with pytest.raises(LedgerIsAppendOnly):
        row.save()
    with pytest.raises(LedgerIsAppendOnly):
        row.delete()
    with pytest.raises(LedgerIsAppendOnly):
        CreditTransaction.objects.filter(pk=row.pk).update(delta=1000)
    with pytest.raises(LedgerIsAppendOnly):
        CreditTransaction.objects.all().delete()
    assert CreditTransaction.objects.get(pk=row.pk).delta == 10


def test_rows_survive_account_deletion(owner):
    user = UserFactory(email="leaving@example.com")
    _fund(user, 10)
    credits_spend(user=user, amount=3, idempotency_key="spend")
    user.delete()
    rows = CreditTransaction.objects.filter(user_email="leaving@example.com")
    assert rows.count() == 2 and all(row.user_id is None for row in rows)


def test_ledger_consistency_check_notices_a_balance_written_behind_its_back(owner):
    _fund(owner, 10)
    assert selectors.ledger_is_consistent(user=owner)
    type(owner).objects.filter(pk=owner.pk).update(credit_balance=11)  # what nobody may do
    assert not selectors.ledger_is_consistent(user=owner)


def test_ledger_for_user_is_newest_first_and_own_rows_only(owner, other_user):
    _fund(owner, 10)
    _fund(other_user, 10)
    credits_spend(user=owner, amount=1, idempotency_key="a")
    credits_spend(user=owner, amount=2, idempotency_key="b")
    assert [row.delta for row in selectors.ledger_for_user(user=owner)] == [-2, -1, 10]
