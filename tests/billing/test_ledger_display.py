"""How ledger rows read on the Billing page and the admin's user page: a persona generation's spend is a
reservation only while its job runs, and a count of one is singular."""

import re

import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.selectors import ledger_for_user
from billing.services import credits_grant, credits_spend
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_run
from personas import generation
from personas.models import Persona

pytestmark = pytest.mark.django_db(transaction=True)

BRIEF = "UK parents of young children who cook on weeknights and are curious about meal kits."


@pytest.fixture
def deferred_jobs(monkeypatch):
    """Queue jobs instead of running them inline, so the page can be read while one waits."""
    queued = []
    monkeypatch.setattr("cohorta.jobs.tasks.run_job.apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def _ledger_rows(client) -> list[str]:
    html = client.get(reverse("billing:index")).content.decode()
    table = html[html.index('id="credit-ledger"') : html.index("</table>", html.index('id="credit-ledger"'))]
    cells = re.findall(r'<td class="ledger-description">(.*?)</td>', table, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in cells]


def test_a_generation_spend_reads_reserved_only_while_its_job_runs(client, owner, deferred_jobs):
    credits_grant(user=owner, amount=10, idempotency_key="test:fund", description="Test credits")
    generation.brief_start(owner=owner, description=BRIEF, count=1)
    spend = CreditTransaction.objects.get(kind="spend")
    assert spend.description == "Generate 1 persona"
    client.force_login(owner)
    assert _ledger_rows(client) == ["Generate 1 persona reserved", "Test credits"]

    [job_id] = deferred_jobs
    job_run(job_id=job_id, worker="test")
    assert Job.objects.get(pk=job_id).state == JobState.DONE and Persona.objects.count() == 1
    assert _ledger_rows(client) == ["Generate 1 persona", "Test credits"]
    assert [row.reserved for row in ledger_for_user(user=owner)] == [False, False]


def test_rows_written_with_the_old_wording_read_as_settled_and_singular(client, owner, staff_user):
    credits_grant(user=owner, amount=10, idempotency_key="test:fund", description="Test credits")
    # As persona generation wrote them before: "(reserved)" in the text for good, and "1 personas".
    credits_spend(user=owner, amount=2, idempotency_key="old:1", description="Generate 1 personas (reserved)")
    credits_spend(user=owner, amount=4, idempotency_key="old:2", description="Generate 2 personas (reserved)")
    client.force_login(owner)
    assert _ledger_rows(client) == ["Generate 2 personas", "Generate 1 persona", "Test credits"]
    client.force_login(staff_user)
    html = client.get(reverse("admin:accounts_user_credits", args=[owner.pk])).content.decode()
    assert "<td>Generate 1 persona</td>" in html and "reserved" not in html
