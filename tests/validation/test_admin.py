"""Validation in the back office: lists that never load a reference's rows or a validation's scorecard, pages
that sum them up, and nothing to add or edit by hand."""

import pytest
from django.urls import reverse

from tests.validation.test_views import mapped, scored, upload

pytestmark = pytest.mark.django_db

# An answer only the stored rows hold: a page showing it has dumped the table.
MARKER = "Zzyzx-only-in-the-rows"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _results(html: str) -> str:
    start = html.index('<table id="result_list"')
    return html[start : html.index("</table>", start)]


def test_the_reference_list_and_page_sum_up_without_the_rows(staff_client, owner):
    reference = mapped(owner)
    table = reference.table
    table["rows"][0][table["columns"].index("why")] = MARKER
    reference.table = table
    reference.save(update_fields=["table"])
    upload(owner, name="Unmapped one")
    html = _results(staff_client.get(reverse("admin:validation_reference_changelist")).content.decode())
    assert "Brand tracker" in html and "Unmapped one" in html and owner.email in html and "brands.csv" in html
    assert "60" in html and MARKER not in html and "Too little" not in html
    assert html.count('alt="True"') == 1 and html.count('alt="False"') == 1  # mapped or not
    page = staff_client.get(reverse("admin:validation_reference_change", args=[reference.pk])).content.decode()
    assert "respondent_id, age, sex, spend_health" in page and "Too little → About right → Too much" in page
    assert "Demographics: Age (age), Gender (sex)" in page and MARKER not in page
    assert staff_client.get(reverse("admin:validation_reference_add")).status_code == 403


def test_the_validation_list_and_page(staff_client, owner):
    validation = scored(owner, mapped(owner))
    html = _results(staff_client.get(reverse("admin:validation_validation_changelist")).content.decode())
    verdict = "Passed" if validation.scorecard["verdict"]["passed"] else "Not yet"
    assert "Brand tracker" in html and owner.email in html and "Done" in html and verdict in html
    assert "ks_similarity" not in html and "human_shares" not in html  # no scorecard JSON in the list
    page = staff_client.get(reverse("admin:validation_validation_change", args=[validation.pk])).content.decode()
    assert validation.scorecard["verdict"]["checks"][0]["label"] in page
    for question in validation.scorecard["questions"]:
        assert question["label"] in page
    assert staff_client.get(reverse("admin:validation_validation_add")).status_code == 403


def test_researchers_do_not_get_the_validation_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:validation_validation_changelist"))
    assert response.status_code == 302 and "login" in response.url
