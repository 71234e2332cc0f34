"""The lists operators use read as words and fit a laptop screen: labels instead of internal names
(job kinds, model column names), short formatted cells."""

from decimal import Decimal

import pytest
from django.urls import reverse

from cohorta.audit.models import AuditAction
from cohorta.audit.services import audit_record
from tests.factories import JobFactory
from usage.models import ModelPrice

pytestmark = pytest.mark.django_db


def _results(html: str) -> str:
    """The changelist's table, without the filters and search around it."""
    start = html.index('<table id="result_list"')
    return html[start : html.index("</table>", start)]


def test_the_audit_log_has_operators_headers_and_cuts_long_text(staff_client, staff_user, owner):
    reason = "Outage on 20 November: every autonomous run of the afternoon was refunded by hand"
    audit_record(action=AuditAction.CREDIT_GRANT, actor=staff_user, subject_user=owner, target=owner, reason=reason)
    html = _results(staff_client.get(reverse("admin:audit_auditentry_changelist")).content.decode())
    for header in ("When", "Action", "By", "What", "Account", "Reason"):
        assert f">{header}</a>" in html or f"<span>{header}</span>" in html, header
    assert "target repr" not in html.lower() and "actor email" not in html.lower()
    assert "Credits granted" in html and "credit_grant" not in html
    assert f'title="{reason}"' in html and reason not in html.replace(f'title="{reason}"', "")


def test_an_audit_entry_page_uses_the_same_words(staff_client, staff_user, owner):
    entry = audit_record(action=AuditAction.QUOTA_CHANGE, actor=staff_user, target=owner, subject_user=owner)
    html = staff_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).content.decode()
    assert "Quota changed" in html and "What" in html and "Target repr" not in html and "Actor email" not in html
    assert f"(user #{owner.pk})" in html and "accounts.User" not in html


def test_the_jobs_list_and_page_name_job_kinds(staff_client, owner):
    job = JobFactory(owner=owner, kind="worker_check")
    body = staff_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "Worker check" in _results(body) and "worker_check" not in _results(body)
    assert ">Worker check</a>" in body  # the kind filter
    page = staff_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "Worker check" in page and "worker_check" not in page


def test_the_price_list_formats_prices_and_folds_the_second_tier(staff_client):
    ModelPrice.objects.create(
        model="gpt-long",
        input_per_1m=Decimal("2.5"),
        output_per_1m=Decimal("15"),
        cached_input_per_1m=Decimal("0.075"),
        tier_threshold_tokens=200_000,
        tier2_input_per_1m=Decimal("5"),
        tier2_output_per_1m=Decimal("22.5"),
    )
    html = _results(staff_client.get(reverse("admin:usage_modelprice_changelist")).content.decode())
    assert "$2.50" in html and "$15.00" in html and "$0.075" in html
    assert "over 200,000 tokens: $5.00 / $22.50" in html
    assert "2.500000" not in html and "Tier 2" not in html
