"""Downloads of a session: transcript CSV and Markdown, report Markdown and Word, everything as JSON.

The analysis is a hand-written job result here, so every line of every file can be checked."""

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

import docx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from cohorta.jobs.models import Job, JobState
from focusgroups.models import Asset, AssetKind, FocusGroup, Message, MessageStatus
from focusgroups.report import analysis, exports
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

KINDS = ("transcript-csv", "transcript-md", "report-md", "report-docx", "json")
QUOTE = "The price has crept up a lot this year!"


@pytest.fixture
def people(owner):
    return [PersonaFactory(owner=owner, name="Priya Shah"), PersonaFactory(owner=owner, name="@Tom Reed")]


@pytest.fixture
def session(owner, people):
    fg = FocusGroupFactory(
        owner=owner,
        title="Oat milk: first reactions!",
        objective="Would people subscribe to oat milk?",
        concept="A monthly box of oat milk.",
    )
    add_participants(fg, people)
    add_message(fg, content="How do you buy milk today?")
    add_message(fg, persona=people[0], content=f"I buy it weekly. {QUOTE}\nI'd switch for a deal.")
    add_message(fg, persona=people[1], content='=HYPERLINK("http://evil.example","click")')
    failed = add_message(fg, persona=people[0], content="")
    Message.objects.filter(pk=failed.pk).update(status=MessageStatus.FAILED, error="Timed out")
    add_message(fg, persona=people[1], content="-5 stars from me. # Not a heading")
    Asset.objects.create(
        focus_group=fg, kind=AssetKind.DOCUMENT, filename="pricing.txt", size=120, text="Box: £12 a month."
    )
    return fg


def _analyse(focus_group, people) -> Job:
    """A finished analysis, written by hand."""
    priya, tom = people
    report = analysis.report_finalise(
        {
            "executive_summary": "Interest is real but price-sensitive.",
            "findings": [{"section": "The subscription", "summary": "Liked, with doubts.", "key_points": ["Price"]}],
            "stances": [
                {"persona_id": priya.pk, "stance": "positive", "summary": "Would switch | for a deal."},
                {"persona_id": tom.pk, "stance": "sceptical", "summary": "Not convinced."},
            ],
            "recommendations": ["Lead with the price per litre."],
            "limitations": ["A panel of two."],
        },
        sections=["The subscription"],
        participants=[analysis.Speaker("Priya Shah", priya.pk), analysis.Speaker("@Tom Reed", tom.pk)],
    )
    result = {
        "version": 1,
        "through_sequence": 5,
        "transcript": {"first_sequence": 1, "last_sequence": 5, "messages": 4, "omitted": 0, "truncated": False},
        "themes": [
            {
                "title": "Price creep",
                "description": "Prices rose.",
                "sentiment": "negative",
                "personas": ["Priya Shah"],
                "persona_ids": [priya.pk],
                "quotes": [
                    {"sequence": 2, "text": QUOTE, "speaker": "Priya Shah", "persona_id": priya.pk, "repaired": False}
                ],
            }
        ],
        "dropped_quotes": 1,
        "dropped_themes": 0,
        "report": report,
        "simulated": False,
        "model": "gpt-4.1",
    }
    return Job.objects.create(
        owner=focus_group.owner,
        kind=analysis.JOB_KIND,
        state=JobState.DONE,
        target_type=ContentType.objects.get_for_model(FocusGroup),
        target_id=str(focus_group.pk),
        result=result,
        finished_at=timezone.now(),
    )


@pytest.fixture
def analysed(session, people):
    return _analyse(session, people)


def _get(client, fg, kind):
    return client.get(reverse("focusgroups:export", args=[fg.pk, kind]))


# --- transcript ------------------------------------------------------------------------------------


def test_transcript_csv(client, owner, session, people):
    client.force_login(owner)
    response = _get(client, session, "transcript-csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="oat-milk-first-reactions-transcript.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["sequence", "created_at", "role", "speaker", "persona_id", "status", "content"]
    assert [row["sequence"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert datetime.fromisoformat(rows[0]["created_at"]).tzinfo is not None
    assert rows[0]["role"] == "researcher" and rows[0]["persona_id"] == ""
    assert rows[1]["content"] == f"I buy it weekly. {QUOTE}\nI'd switch for a deal."
    assert rows[1]["persona_id"] == str(people[0].pk) and rows[1]["speaker"] == "Priya Shah"
    assert rows[3]["status"] == "failed"
    # Formula injection: cells that a spreadsheet would run start with a quote.
    assert rows[2]["content"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows[2]["speaker"] == "'@Tom Reed"
    assert rows[4]["content"].startswith("'-5 stars")


def test_csv_cell_neutralises_every_formula_prefix():
    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert exports.csv_cell(f"{prefix}1+1") == f"'{prefix}1+1"
    assert exports.csv_cell("fine") == "fine" and exports.csv_cell(None) == ""


def test_transcript_markdown(client, owner, session):
    client.force_login(owner)
    response = _get(client, session, "transcript-md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="oat-milk-first-reactions-transcript.md"'
    text = response.content.decode()
    assert text.startswith("# Transcript: Oat milk: first reactions!\n")
    assert "**Objective:** Would people subscribe to oat milk?" in text
    assert "**#2 · Priya Shah** (persona)" in text and QUOTE in text
    assert "_No answer: Timed out._" in text
    assert "-5 stars from me. # Not a heading" in text


# --- report ----------------------------------------------------------------------------------------


def test_report_markdown(client, owner, session, analysed):
    client.force_login(owner)
    response = _get(client, session, "report-md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="oat-milk-first-reactions-report.md"'
    text = response.content.decode()
    assert text.startswith("# Report: Oat milk: first reactions!\n")
    assert "## Executive summary\n\nInterest is real but price-sensitive." in text
    assert "### 1. Price creep (Negative)" in text
    # Stored before quotes had a sentiment of their own: the quote reads as its theme's.
    assert f"> “{QUOTE}”  \n> — Priya Shah, message #2 (negative)" in text
    assert "## Findings by guide section" in text and "### The subscription" in text and "- Price" in text
    assert "| Priya Shah | Positive | Would switch \\| for a deal. |" in text
    assert "1. Lead with the price per litre." in text
    assert f"- {analysis.SYNTHETIC_LIMITATION}\n\n## Methods\n" in text  # the methods close the report


def test_report_docx_has_the_stance_table(client, owner, session, analysed):
    client.force_login(owner)
    response = _get(client, session, "report-docx")
    assert response.status_code == 200
    assert response["Content-Type"] == exports.DOCX
    assert response["Content-Disposition"] == 'attachment; filename="oat-milk-first-reactions-report.docx"'
    document = docx.Document(io.BytesIO(response.content))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == "Report: Oat milk: first reactions!"
    assert "Objective: Would people subscribe to oat milk?" in paragraphs
    assert any(p.startswith("Date: ") for p in paragraphs)
    for heading in ("Executive summary", "Key themes", "Findings by guide section", "Participant stances"):
        assert heading in paragraphs
    assert "1. Price creep" in paragraphs
    assert f"“{QUOTE}” — Priya Shah, message #2 (negative)" in paragraphs
    assert "Lead with the price per litre." in paragraphs
    assert paragraphs[-1] == analysis.SYNTHETIC_LIMITATION
    *_glance, table = document.tables  # the "At a glance" tables (test_report_charts.py), then the stances
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows == [
        ["Participant", "Stance", "Summary"],
        ["Priya Shah", "Positive", "Would switch | for a deal."],
        ["@Tom Reed", "Sceptical", "Not convinced."],
    ]


def test_report_exports_before_any_analysis_are_404_with_a_reason(client, owner, session, owner_api):
    client.force_login(owner)
    for kind in ("report-md", "report-docx"):
        assert _get(client, session, kind).status_code == 404
        response = owner_api.get(f"/api/v1/focus-groups/{session.pk}/exports/{kind}/")
        assert response.status_code == 404
        assert "not been analysed yet" in response.json()["error"]["message"]
    assert _get(client, session, "nonsense").status_code == 404
    for kind in ("transcript-csv", "transcript-md", "json"):
        assert _get(client, session, kind).status_code == 200


# --- everything ------------------------------------------------------------------------------------


def test_everything_json(client, owner, session, analysed, people):
    for tokens, cost, fg_id in ((100, "0.0010", session.pk), (50, "0.0005", session.pk), (999, "9", None)):
        UsageEvent.objects.create(
            user=owner,
            focus_group_id=fg_id,
            feature="report",
            provider="openai",
            model="gpt-4.1",
            input_tokens=tokens,
            output_tokens=10,
            cost_usd=Decimal(cost),
        )
    client.force_login(owner)
    response = _get(client, session, "json")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="oat-milk-first-reactions-export.json"'
    data = json.loads(response.content)
    assert data["format"] == "cohorta.focus_group" and data["version"] == 1
    assert data["session"]["title"] == "Oat milk: first reactions!" and data["session"]["concept"]
    assert [p["profile"]["name"] for p in data["participants"]] == ["Priya Shah", "@Tom Reed"]
    assert data["participants"][0]["profile"]["age"] == people[0].age
    assert data["guide"] is None
    [asset] = data["assets"]
    assert asset["filename"] == "pricing.txt" and asset["text_chars"] == len("Box: £12 a month.")
    assert "text" not in asset and "image" not in asset
    assert [m["sequence"] for m in data["messages"]] == [1, 2, 3, 4, 5]
    assert data["messages"][3]["status"] == "failed" and data["messages"][3]["error"] == "Timed out"
    assert data["themes"][0]["quotes"][0]["text"] == QUOTE
    assert data["report"]["limitations"][-1] == analysis.SYNTHETIC_LIMITATION
    assert data["analysis"]["job_id"] == str(analysed.pk) and data["analysis"]["dropped_quotes"] == 1
    usage = data["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (2, 150, 20, 170)
    assert Decimal(usage["cost_usd"]) == Decimal("0.0015")
    assert usage["by_feature"][0]["feature"] == "report"


def test_everything_json_before_analysis_has_no_themes(client, owner, session):
    client.force_login(owner)
    data = json.loads(_get(client, session, "json").content)
    assert data["themes"] is None and data["report"] is None and data["analysis"] is None
    assert data["usage"]["calls"] == 0 and data["usage"]["cost_usd"] == "0"


# --- the API and who may download --------------------------------------------------------------------


def test_api_exports_match_the_pages(client, owner, session, analysed, owner_api):
    client.force_login(owner)
    for kind in KINDS:
        page = _get(client, session, kind)
        api = owner_api.get(f"/api/v1/focus-groups/{session.pk}/exports/{kind}/", HTTP_ACCEPT="text/csv")
        assert api.status_code == 200, kind
        assert api["Content-Type"] == page["Content-Type"]
        assert api["Content-Disposition"] == page["Content-Disposition"]
        if kind not in ("json", "report-docx"):
            assert api.content == page.content
    assert owner_api.get(f"/api/v1/focus-groups/{session.pk}/exports/pdf/").status_code == 404


def test_only_the_owner_may_download(client, other_user, session, analysed):
    client.force_login(other_user)
    for kind in KINDS:
        assert _get(client, session, kind).status_code == 404, kind
    client.logout()
    response = _get(client, session, "json")
    assert response.status_code == 302 and "login" in response["Location"]
