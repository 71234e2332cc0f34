"""The report's pictures: numbers computed from a seeded session (the sentiment mix of each theme's quotes,
share of voice, when each theme came up), drawn on the Report page over tables that print, and carried by the
Word and Markdown downloads as tables. An analysis stored before quotes had a sentiment counts each quote as
its theme's."""

import copy
import io

import docx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from cohorta.jobs.models import Job, JobState
from focusgroups.models import FocusGroup, Message, MessageStatus
from focusgroups.report import analysis
from focusgroups.report import charts as report_charts
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db

PRIYA_1 = "I buy oat milk every week and the price keeps rising."  # 11 words
TOM_1 = "I do not drink it."  # 5 words
PRIYA_2 = "A box would save me a trip."  # 7 words
ANA_1 = "I love the idea of fewer plastic bottles."  # 8 words


@pytest.fixture
def people(owner):
    return {
        "priya": PersonaFactory(owner=owner, name="Priya Shah"),
        "tom": PersonaFactory(owner=owner, name="Tom Reed"),
        "ana": PersonaFactory(owner=owner, name="Ana Costa"),
        "ben": PersonaFactory(owner=owner, name="Ben Silent"),
    }


@pytest.fixture
def session(owner, people):
    """#1 researcher, #2 Priya, #3 Tom, #4 Ana (failed), #5 researcher, #6 Priya, #7 Ana; Ben never speaks;
    #8 Priya comes after the analysis."""
    fg = FocusGroupFactory(owner=owner, title="Oat milk", objective="Would people subscribe to oat milk?")
    add_participants(fg, [people["priya"], people["tom"], people["ana"], people["ben"]])
    add_message(fg, content="How do you buy milk today?")
    add_message(fg, persona=people["priya"], content=PRIYA_1)
    add_message(fg, persona=people["tom"], content=TOM_1)
    failed = add_message(fg, persona=people["ana"], content="These words do not count at all.")
    Message.objects.filter(pk=failed.pk).update(status=MessageStatus.FAILED, error="Timed out")
    add_message(fg, content="What about a monthly box?")
    add_message(fg, persona=people["priya"], content=PRIYA_2)
    add_message(fg, persona=people["ana"], content=ANA_1)
    add_message(fg, persona=people["priya"], content="One more thing after the analysis was written.")
    return fg


def _quote(sequence, text, persona, sentiment):
    return {
        "sequence": sequence,
        "text": text,
        "speaker": persona.name,
        "persona_id": persona.pk,
        "repaired": False,
        "sentiment": sentiment,
    }


def _store(session, result):
    return Job.objects.create(
        owner=session.owner,
        kind=analysis.JOB_KIND,
        state=JobState.DONE,
        target_type=ContentType.objects.get_for_model(FocusGroup),
        target_id=str(session.pk),
        result=result,
        finished_at=timezone.now(),
    )


@pytest.fixture
def analysed(session, people):
    priya, tom, ana = people["priya"], people["tom"], people["ana"]
    report = analysis.report_finalise(
        {"executive_summary": "Price matters.", "findings": [], "stances": [], "recommendations": ["Test a price."]},
        sections=["Overall"],
        participants=analysis.session_participants(focus_group=session),
    )
    themes = [
        {
            "title": "Price creep",
            "description": "Prices rose.",
            "sentiment": "negative",
            "personas": ["Priya Shah"],
            "persona_ids": [priya.pk],
            "quotes": [
                _quote(2, "the price keeps rising", priya, "negative"),
                _quote(6, "A box would save me a trip.", priya, "neutral"),
            ],
        },
        {
            "title": "Convenience",
            "description": "Saves a trip.",
            "sentiment": "positive",
            "personas": ["Priya Shah", "Tom Reed", "Ana Costa"],
            "persona_ids": [priya.pk, tom.pk, ana.pk],
            "quotes": [
                _quote(6, "save me a trip", priya, "positive"),
                _quote(3, "I do not drink it.", tom, "negative"),
                _quote(7, "I love the idea", ana, "positive"),
            ],
        },
        {
            "title": "Packaging waste",
            "description": "Fewer bottles.",
            "sentiment": "mixed",
            "personas": ["Ana Costa"],
            "persona_ids": [ana.pk],
            "quotes": [_quote(7, "fewer plastic bottles", ana, "mixed")],
        },
    ]
    result = {
        "version": 1,
        "through_sequence": 7,
        "transcript": {"first_sequence": 1, "last_sequence": 7, "messages": 6, "omitted": 0, "truncated": False},
        "themes": themes,
        "dropped_quotes": 0,
        "dropped_themes": 0,
        "report": report,
        "simulated": False,
        "model": "gpt-4.1",
    }
    return _store(session, result)


@pytest.fixture
def analysed_before_quote_sentiments(analysed):
    """The same analysis as stored before quotes had a sentiment of their own."""
    result = copy.deepcopy(analysed.result)
    for theme in result["themes"]:
        for quote in theme["quotes"]:
            del quote["sentiment"]
    analysed.result = result
    analysed.save(update_fields=["result"])
    return analysed


def _charts(session):
    return report_charts.report_charts(focus_group=session, found=analysis.analysis_get(focus_group=session))


def test_sentiment_mix_per_theme(session, analysed):
    sentiment = _charts(session)["sentiment"]
    assert sentiment["labels"] == ["Positive", "Neutral", "Mixed", "Negative"]
    # Each theme keeps its own sentiment; its quotes are counted by theirs (positive, neutral, mixed, negative).
    assert [(r["number"], r["title"], r["sentiment"], r["counts"], r["quotes"]) for r in sentiment["rows"]] == [
        (1, "Price creep", "negative", [0, 1, 0, 1], 2),
        (2, "Convenience", "positive", [2, 0, 0, 1], 3),
        (3, "Packaging waste", "mixed", [0, 0, 1, 0], 1),
    ]
    assert sentiment["rows"][1]["mix"] == {"positive": 2, "neutral": 0, "mixed": 0, "negative": 1}
    assert sentiment["totals"] == [
        {"sentiment": "positive", "label": "Positive", "themes": 1, "quotes": 2},
        {"sentiment": "neutral", "label": "Neutral", "themes": 0, "quotes": 1},
        {"sentiment": "mixed", "label": "Mixed", "themes": 1, "quotes": 1},
        {"sentiment": "negative", "label": "Negative", "themes": 1, "quotes": 2},
    ]


def test_an_analysis_from_before_quote_sentiments_counts_each_quote_as_its_theme(
    client, owner, session, analysed_before_quote_sentiments
):
    sentiment = _charts(session)["sentiment"]
    assert [(r["sentiment"], r["counts"]) for r in sentiment["rows"]] == [
        ("negative", [0, 0, 0, 2]),
        ("positive", [3, 0, 0, 0]),
        ("mixed", [0, 0, 1, 0]),
    ]
    data = report_charts.charts_json(_charts(session))
    assert [(d["label"], d["data"]) for d in data["sentiment"]["datasets"]] == [
        ("Positive", [0, 3, 0]),
        ("Mixed", [0, 0, 1]),
        ("Negative", [2, 0, 0]),
    ]
    assert [p["sentiment"] for p in data["timeline"]["points"]][:2] == ["Negative", "Negative"]
    # Read anywhere (page, API, downloads), a stored quote without a sentiment has its theme's.
    found = analysis.analysis_get(focus_group=session)
    assert [[q["sentiment"] for q in t["quotes"]] for t in found["themes"]] == [
        ["negative", "negative"],
        ["positive", "positive", "positive"],
        ["mixed"],
    ]
    client.force_login(owner)
    body = client.get(f"/api/v1/focus-groups/{session.pk}/analysis/").json()
    assert [q["sentiment"] for q in body["themes"][0]["quotes"]] == ["negative", "negative"]
    html = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert (
        '<td>2. Convenience</td><td>Positive</td><td class="text-end">3</td><td class="text-end">0</td>'
        '<td class="text-end">0</td><td class="text-end">0</td><td class="text-end">3</td>' in html
    )
    document = docx.Document(
        io.BytesIO(client.get(reverse("focusgroups:export", args=[session.pk, "report-docx"])).content)
    )
    assert [[c.text for c in row.cells] for row in document.tables[0].rows][1:] == [
        ["1. Price creep", "Negative", "0", "0", "0", "2", "2"],
        ["2. Convenience", "Positive", "3", "0", "0", "0", "3"],
        ["3. Packaging waste", "Mixed", "0", "0", "1", "0", "1"],
    ]


def test_share_of_voice_counts_our_messages_up_to_the_analysis(session, analysed, people):
    voice = _charts(session)["voice"]
    # Complete answers up to #7 only: Ana's failed answer and Priya's #8 do not count; Ben is there with 0.
    assert (voice["answers"], voice["words"]) == (4, 31)
    rows = [
        (r["name"], r["persona_id"], r["answers"], r["words"], r["answers_share"], r["words_share"])
        for r in voice["rows"]
    ]
    assert rows == [
        ("Priya Shah", people["priya"].pk, 2, 18, 50.0, 58.1),
        ("Tom Reed", people["tom"].pk, 1, 5, 25.0, 16.1),
        ("Ana Costa", people["ana"].pk, 1, 8, 25.0, 25.8),
        ("Ben Silent", people["ben"].pk, 0, 0, 0.0, 0.0),
    ]


def test_a_deleted_personas_answers_keep_their_name(session, analysed, people):
    Message.objects.filter(focus_group=session, persona=people["tom"]).update(persona=None)
    session.participants.filter(persona=people["tom"]).delete()
    rows = {r["name"]: (r["persona_id"], r["answers"], r["words"]) for r in _charts(session)["voice"]["rows"]}
    assert rows["Tom Reed"] == (None, 1, 5)
    assert list(rows) == ["Priya Shah", "Ana Costa", "Ben Silent", "Tom Reed"]  # the panel first, then former members


def test_when_each_theme_came_up(session, analysed):
    timeline = _charts(session)["timeline"]
    assert (timeline["first_sequence"], timeline["last_sequence"]) == (1, 7)
    assert [
        (r["title"], r["messages"], r["participants"], r["sequences"], r["first"], r["last"]) for r in timeline["rows"]
    ] == [
        ("Price creep", 2, 1, [2, 6], 2, 6),
        ("Convenience", 3, 3, [3, 6, 7], 3, 7),
        ("Packaging waste", 1, 1, [7], 7, 7),
    ]
    assert timeline["rows"][1]["speakers"] == ["Tom Reed", "Priya Shah", "Ana Costa"]
    assert timeline["rows"][1]["sentiments"] == ["negative", "positive", "positive"]


def test_chart_data_for_the_page(session, analysed):
    data = report_charts.charts_json(_charts(session))
    assert data["sentiment"]["labels"] == ["1. Price creep", "2. Convenience", "3. Packaging waste"]
    # Stacked: one dataset per quote sentiment, a segment per theme.
    assert [(d["label"], d["color"], d["data"]) for d in data["sentiment"]["datasets"]] == [
        ("Positive", "#198754", [0, 2, 0]),
        ("Neutral", "#6c757d", [1, 0, 0]),
        ("Mixed", "#e0a800", [0, 0, 1]),
        ("Negative", "#dc3545", [1, 1, 0]),
    ]
    assert data["sentiment"]["overall"] == ["Negative", "Positive", "Mixed"]
    assert data["voice"]["words_share"] == [58.1, 16.1, 25.8, 0.0]
    # Each message in the colour of its quote's sentiment.
    assert [(p["x"], p["y"], p["speaker"], p["sentiment"]) for p in data["timeline"]["points"]] == [
        (2, 0, "Priya Shah", "Negative"),
        (6, 0, "Priya Shah", "Neutral"),
        (3, 1, "Tom Reed", "Negative"),
        (6, 1, "Priya Shah", "Positive"),
        (7, 1, "Ana Costa", "Positive"),
        (7, 2, "Ana Costa", "Mixed"),
    ]


def test_the_report_page_draws_the_charts_over_tables(client, owner, session, analysed):
    client.force_login(owner)
    response = client.get(reverse("focusgroups:report", args=[session.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("sentiment", "timeline", "voice"):
        assert f'data-report-chart="{chart}"' in html
    assert 'id="report-charts-data"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "js/report-charts.js" in html
    # The tables: what prints, what screen readers read, what shows without JavaScript.
    # Theme, its overall sentiment, its quotes by sentiment (positive, neutral, mixed, negative), all its quotes.
    assert (
        '<th scope="col">Overall</th><th scope="col" class="text-end">Positive</th>'
        '<th scope="col" class="text-end">Neutral</th><th scope="col" class="text-end">Mixed</th>'
        '<th scope="col" class="text-end">Negative</th><th scope="col" class="text-end">Quotes</th>' in html
    )
    assert (
        '<td>2. Convenience</td><td>Positive</td><td class="text-end">2</td><td class="text-end">0</td>'
        '<td class="text-end">0</td><td class="text-end">1</td><td class="text-end">3</td>' in html
    )
    assert (
        '<td>Priya Shah</td><td class="text-end">2</td><td class="text-end">18</td><td class="text-end">58.1%</td>'
        in html
    )
    assert f'href="/focus-groups/{session.pk}/#msg-6">#6</a>' in html
    assert (
        "@media print" in html
        and ".report-chart canvas { max-width: 100% !important; height: auto !important; }" in html
    )


def test_the_word_report_carries_the_tables(client, owner, session, analysed):
    client.force_login(owner)
    response = client.get(reverse("focusgroups:export", args=[session.pk, "report-docx"]))
    document = docx.Document(io.BytesIO(response.content))
    paragraphs = [p.text for p in document.paragraphs]
    for heading in ("At a glance", "Sentiment per theme", "When each theme came up", "Share of voice"):
        assert heading in paragraphs
    sentiment, timeline, voice, stances = ([[c.text for c in row.cells] for row in t.rows] for t in document.tables)
    assert sentiment == [
        ["Theme", "Overall", "Positive", "Neutral", "Mixed", "Negative", "Quotes"],
        ["1. Price creep", "Negative", "0", "1", "0", "1", "2"],
        ["2. Convenience", "Positive", "2", "0", "0", "1", "3"],
        ["3. Packaging waste", "Mixed", "0", "0", "1", "0", "1"],
    ]
    assert "— Tom Reed, message #3 (negative)" in "\n".join(paragraphs)  # the theme's quotes, each with its own
    assert timeline == [
        ["Theme", "Messages", "Participants", "Message numbers"],
        ["1. Price creep", "2", "1", "#2, #6"],
        ["2. Convenience", "3", "3", "#3, #6, #7"],
        ["3. Packaging waste", "1", "1", "#7"],
    ]
    assert voice == [
        ["Participant", "Answers", "Words", "Share of words"],
        ["Priya Shah", "2", "18", "58.1%"],
        ["Tom Reed", "1", "5", "16.1%"],
        ["Ana Costa", "1", "8", "25.8%"],
        ["Ben Silent", "0", "0", "0.0%"],
    ]
    assert stances[0] == ["Participant", "Stance", "Summary"]
    assert any("up to message #7" in p and "4 answers, 31 words" in p for p in paragraphs)


def test_the_markdown_report_carries_the_tables(client, owner, session, analysed):
    client.force_login(owner)
    text = client.get(reverse("focusgroups:export", args=[session.pk, "report-md"])).content.decode()
    glance = text[text.index("## At a glance") : text.index("## Key themes")]
    assert "### Sentiment per theme" in glance
    assert "| Theme | Overall | Positive | Neutral | Mixed | Negative | Quotes |" in glance
    assert "| 2. Convenience | Positive | 2 | 0 | 0 | 1 | 3 |" in glance
    assert "> — Priya Shah, message #6 (neutral)" in text
    assert "### When each theme came up" in glance and "| 1. Price creep | 2 | 1 | #2, #6 |" in glance
    assert "### Share of voice" in glance and "| Priya Shah | 2 | 18 | 58.1% |" in glance


def test_another_users_report_and_downloads_are_404(client, other_user, session, analysed):
    client.force_login(other_user)
    assert client.get(reverse("focusgroups:report", args=[session.pk])).status_code == 404
    for kind in ("report-md", "report-docx"):
        assert client.get(reverse("focusgroups:export", args=[session.pk, kind])).status_code == 404
