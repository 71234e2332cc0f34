import pytest

from billing.selectors import credits_balance, ledger_is_consistent
from billing.services import credits_grant
from cohorta.accounts.models import User

pytestmark = pytest.mark.django_db


def test_saving_a_stale_user_copy_never_rewrites_the_balance(owner):
    stale = User.objects.get(pk=owner.pk)  # loaded before the grant
    credits_grant(user=owner, amount=50, idempotency_key="test:grant")
    stale.name = "Renamed"
    stale.save()
    assert credits_balance(user=owner) == 50
    assert User.objects.get(pk=owner.pk).name == "Renamed"
    assert ledger_is_consistent(user=owner)


def test_new_users_start_at_zero_and_emails_are_normalised():
    user = User.objects.create_user("Mixed.Case@Example.COM", "Correct-Horse-Battery-9")
    assert user.email == "mixed.case@example.com" and user.credit_balance == 0 and user.role == "researcher"
