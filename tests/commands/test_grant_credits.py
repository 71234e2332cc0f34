import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import CreditTransaction
from billing.selectors import credits_balance, ledger_is_consistent
from cohorta.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def grant(*args):
    call_command("grant_credits", *args)


def test_grant_goes_through_the_ledger_and_the_audit_log(owner, capsys):
    grant("--email", "OWNER@example.com", "--credits", "25", "--reason", "Outage on 20 Nov")
    assert credits_balance(user=owner) == 25 and ledger_is_consistent(user=owner)
    row = CreditTransaction.objects.get(user=owner)
    assert (row.kind, row.delta, row.description, row.created_by) == ("grant", 25, "Outage on 20 Nov", None)
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CREDIT_GRANT)
    assert entry.actor is None and entry.subject_user == owner
    assert entry.before == {"balance": 0} and entry.after["balance"] == 25
    assert "Outage on 20 Nov" in entry.reason
    assert "balance now 25" in capsys.readouterr().out


def test_same_idempotency_key_does_nothing_the_second_time(owner, capsys):
    args = ("--email", owner.email, "--credits", "40", "--reason", "Goodwill", "--idempotency-key", "TICKET-7")
    grant(*args)
    grant(*args)
    assert credits_balance(user=owner) == 40
    assert CreditTransaction.objects.filter(user=owner).count() == 1
    assert AuditEntry.objects.count() == 1
    assert "Already done" in capsys.readouterr().out


def test_without_a_key_each_run_grants_again(owner):
    grant("--email", owner.email, "--credits", "5", "--reason", "Top-up")
    grant("--email", owner.email, "--credits", "5", "--reason", "Top-up")
    assert credits_balance(user=owner) == 10


def test_a_key_reused_for_something_else_is_refused(owner, other_user):
    grant("--email", owner.email, "--credits", "5", "--reason", "x", "--idempotency-key", "k1")
    with pytest.raises(CommandError) as err:
        grant("--email", other_user.email, "--credits", "5", "--reason", "x", "--idempotency-key", "k1")
    assert err.value.returncode == 4
    assert credits_balance(user=other_user) == 0


def test_negative_amount_is_an_adjustment_and_never_goes_below_zero(owner):
    grant("--email", owner.email, "--credits", "10", "--reason", "Start")
    grant("--email", owner.email, "--credits", "-4", "--reason", "Granted by mistake")
    assert credits_balance(user=owner) == 6
    assert CreditTransaction.objects.filter(user=owner, kind="adjustment", delta=-4).exists()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CREDIT_ADJUST).count() == 1
    with pytest.raises(CommandError) as err:
        grant("--email", owner.email, "--credits", "-7", "--reason", "Too much")
    assert err.value.returncode == 3 and "below zero" in str(err.value)
    assert credits_balance(user=owner) == 6 and ledger_is_consistent(user=owner)
    assert AuditEntry.objects.count() == 2  # nothing recorded for the refused one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "nobody@example.com", "--credits", "5", "--reason", "x"), "No account"),
        (("--email", "owner@example.com", "--credits", "0", "--reason", "x"), "must not be 0"),
        (("--email", "owner@example.com", "--credits", "5", "--reason", "  "), "must say why"),
    ],
)
def test_bad_input_is_refused_clearly(owner, args, message):
    with pytest.raises(CommandError, match=message):
        grant(*args)
    assert not CreditTransaction.objects.exists()


def test_reason_is_required(owner):
    with pytest.raises(CommandError, match="--reason"):
        grant("--email", owner.email, "--credits", "5")
