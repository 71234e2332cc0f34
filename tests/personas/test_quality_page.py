"""Where a persona's quality checks show: its page's Quality block, the persona exports, the account export and
the admin."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cohorta.core.models import get_app_settings
from personas.io import QUALITY_COLUMNS
from personas.models import Persona, PersonaCheck
from privacy.exports import persona_checks_rows
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


def scored(persona, adherence, consistency, **fields):
    defaults = {
        "adherence_reason": f"Adherence {adherence}: she sounds like herself.",
        "consistency_reason": f"Consistency {consistency}: Q2 and Q5 agree.",
        "source_kind": "panel",
        "source_id": 7,
        "source_label": "Panel: Ohio voters",
        "judge_model": "gpt-4o-mini",
    }
    defaults.update(fields)
    return PersonaCheck.objects.create(persona=persona, adherence=adherence, consistency=consistency, **defaults)


def test_never_checked_explains_what_a_check_is(logged_in, owner):
    persona = PersonaFactory(owner=owner, name="Dana Whitfield")
    page = logged_in.get(reverse("personas:detail", args=[persona.pk])).content.decode()
    assert 'id="quality"' in page and 'id="quality-empty"' in page
    assert "Not checked yet" in page and "stays in character" in page
    assert 'id="quality-flag"' not in page


def test_latest_scores_with_their_source_and_no_flag_at_the_bar(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    scored(persona, 3, 3, source_label="Probe interview", source_kind="probe", source_id=None)  # older
    scored(persona, 6, 8)
    page = logged_in.get(reverse("personas:detail", args=[persona.pk])).content.decode()
    assert 'id="quality-adherence">6/9' in page and 'id="quality-consistency">8/9' in page
    assert "Adherence 6: she sounds like herself." in page
    assert f'href="{reverse("panels:detail", args=[7])}#quality">Panel: Ohio voters</a>' in page
    assert 'id="quality-flag"' not in page  # 6 is at the bar, not below it
    assert 'id="quality-history"' in page and "3/9 in character" in page  # the earlier check


def test_below_the_bar_is_flagged_with_the_judges_reason(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    scored(persona, 8, 4, consistency_reason="Q2 says family comes first; Q5 says money does.")
    page = logged_in.get(reverse("personas:detail", args=[persona.pk])).content.decode()
    assert "Below the quality bar (6):" in page
    assert "Q2 says family comes first; Q5 says money does." in page

    app = get_app_settings()
    app.quality_judge_bar = 4
    app.save()
    page = logged_in.get(reverse("personas:detail", args=[persona.pk])).content.decode()
    assert "Below the quality bar" not in page  # the admin lowered the bar: 4 is at it


def test_a_failed_check_says_so_and_keeps_the_last_scores(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    scored(persona, 7, 7)
    PersonaCheck.objects.create(
        persona=persona,
        source_kind="panel",
        error="The quality judge gave no usable scores: The AI returned an answer in the wrong shape twice.",
    )
    page = logged_in.get(reverse("personas:detail", args=[persona.pk])).content.decode()
    assert 'id="quality-adherence">7/9' in page
    assert "Not scored:" in page and "wrong shape twice" in page


def test_another_users_persona_page_is_a_404(client, other_user, owner):
    persona = PersonaFactory(owner=owner)
    scored(persona, 2, 2)
    client.force_login(other_user)
    assert client.get(reverse("personas:detail", args=[persona.pk])).status_code == 404


def test_exports_carry_the_latest_check(logged_in, owner):
    checked = PersonaFactory(owner=owner, name="Checked")
    PersonaFactory(owner=owner, name="Unchecked")
    scored(checked, 2, 9, created_at=scored(checked, 9, 9).created_at.replace(year=2030))  # the newest
    payload = json.loads(logged_in.get("/personas/export/?format=json").content)
    rows = {p["name"]: p for p in payload["personas"]}
    assert rows["Unchecked"]["quality"] is None
    quality = rows["Checked"]["quality"]
    assert (quality["adherence"], quality["consistency"], quality["flagged"], quality["bar"]) == (2, 9, True, 6)
    assert quality["source"] == "Panel: Ohio voters" and quality["judge_model"] == "gpt-4o-mini"

    text = logged_in.get("/personas/export/?format=csv").content.decode()
    by_name = {row["name"]: row for row in csv.DictReader(io.StringIO(text))}
    assert list(by_name["Checked"])[-len(QUALITY_COLUMNS) :] == list(QUALITY_COLUMNS)
    assert by_name["Checked"]["quality_adherence"] == "2" and by_name["Checked"]["quality_flagged"] == "yes"
    assert by_name["Checked"]["quality_flag_reason"] == "Adherence 2: she sounds like herself."
    assert by_name["Unchecked"]["quality_adherence"] == "" and by_name["Unchecked"]["quality_source"] == ""


def test_an_exported_file_with_quality_imports_back(logged_in, owner):
    persona = PersonaFactory(owner=owner, name="Round Trip")
    scored(persona, 5, 5)
    for fmt in ("csv", "json"):
        body = logged_in.get(f"/personas/export/?format={fmt}").content
        upload = SimpleUploadedFile(f"personas.{fmt}", body)
        response = logged_in.post(reverse("personas:import"), {"file": upload})
        assert response.status_code == 302, response.content[:500]
    # 1, +1 from the CSV, +2 from the JSON exported after it: the quality columns were ignored, not refused.
    assert Persona.objects.filter(owner=owner, name="Round Trip").count() == 4
    assert PersonaCheck.objects.filter(persona__owner=owner).count() == 1  # importing never makes checks


def test_the_account_export_holds_the_checks_and_nobody_elses(owner, other_user):
    mine = scored(PersonaFactory(owner=owner), 4, 7)
    scored(PersonaFactory(owner=other_user), 1, 1)
    rows = list(persona_checks_rows(owner))
    assert [row["id"] for row in rows] == [mine.pk]
    assert rows[0]["adherence"] == 4 and rows[0]["consistency_reason"] == "Consistency 7: Q2 and Q5 agree."
    assert rows[0]["source_label"] == "Panel: Ohio voters"


def test_admin_lists_checks_read_only_with_filters(client, staff_user, owner):
    persona = PersonaFactory(owner=owner, name="Flagged Fran")
    scored(persona, 3, 8)
    scored(PersonaFactory(owner=owner, name="Fine Fiona"), 8, 8)
    PersonaCheck.objects.create(persona=PersonaFactory(owner=owner, name="Failed Fred"), source_kind="survey")
    client.force_login(staff_user)
    url = reverse("admin:personas_personacheck_changelist")
    page = client.get(url).content.decode()
    assert "Flagged Fran" in page and "Fine Fiona" in page and "Failed Fred" in page
    flagged = client.get(url, {"outcome": "flagged"}).content.decode()
    assert "Flagged Fran" in flagged and "Fine Fiona" not in flagged and "Failed Fred" not in flagged
    failed = client.get(url, {"outcome": "failed"}).content.decode()
    assert "Failed Fred" in failed and "Flagged Fran" not in failed
    assert client.get(url, {"source_kind": "survey"}).status_code == 200
    assert client.get(reverse("admin:personas_personacheck_add")).status_code == 403
