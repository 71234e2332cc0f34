"""Panels in the back office: lists that fit a laptop and never dump the stored populations, a panel's
page with its members summed up, and nothing to add or edit by hand."""

import pytest
from django.urls import reverse

from billing.services import credits_grant
from panels import services
from panels.models import MemberState, MicrodataFile, PanelMember, PopulationFile
from panels.population import bundled_population

pytestmark = pytest.mark.django_db

# A category only the stored JSON holds: a list page showing it has dumped the JSON.
MARKER = "Zzyzx-only-in-the-json"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _results(html: str) -> str:
    start = html.index('<table id="result_list"')
    return html[start : html.index("</table>", start)]


def _population_json() -> dict:
    data = bundled_population("us_adults").to_json()
    data["dimensions"][0]["shares"].append([MARKER, 0.0])
    return data


def test_the_panel_list_and_page(staff_client, owner):
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    panel = services.panel_build_start(owner=owner, target="bundled:us_adults", size=30, seed=4, name="Admin panel")
    PanelMember.objects.filter(panel=panel, position__lt=12).update(state=MemberState.DONE)
    PanelMember.objects.filter(panel=panel, position=12).update(state=MemberState.FAILED, error="Model timed out")
    html = _results(staff_client.get(reverse("admin:panels_panel_changelist")).content.decode())
    assert "Admin panel" in html and owner.email in html and "12 / 30" in html
    assert "US adults (Census 2010 / ACS 2019)" in html and "Pending" in html
    assert "us_adults" not in html and '"dimensions"' not in html
    page = staff_client.get(reverse("admin:panels_panel_change", args=[panel.pk])).content.decode()
    assert "Done: 12" in page and "Failed: 1" in page and "Model timed out" in page
    assert "Age, Gender, Education (+4)" in page
    assert staff_client.get(reverse("admin:panels_panel_add")).status_code == 403


def test_upload_lists_show_a_summary_not_the_json(staff_client, owner):
    PopulationFile.objects.create(owner=owner, name="UK adults", filename="uk.csv", data=_population_json())
    MicrodataFile.objects.create(
        owner=owner,
        name="Survey 2025",
        filename="s.csv",
        row_count=1234,
        data={
            "columns": ["age"],
            "labels": [["age", "Age"]],
            "rows": [[MARKER]],
            "weights": [1.0],
            "weight_column": "wt",
        },
    )
    html = _results(staff_client.get(reverse("admin:panels_populationfile_changelist")).content.decode())
    assert "UK adults" in html and "uk.csv" in html and MARKER not in html
    html = _results(staff_client.get(reverse("admin:panels_microdatafile_changelist")).content.decode())
    assert "Survey 2025" in html and "1,234" in html and MARKER not in html
    item = PopulationFile.objects.get()
    page = staff_client.get(reverse("admin:panels_populationfile_change", args=[item.pk])).content.decode()
    assert "Age, Gender, Education (+4)" in page and MARKER not in page


def test_researchers_do_not_get_the_panels_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:panels_panel_changelist"))
    assert response.status_code == 302 and "login" in response.url
