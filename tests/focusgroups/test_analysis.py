"""Key themes and the report: the job (simulator and fake LLM), quote checking, the Report page, the API,
and who may see them."""

import copy
import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cohorta.errors import ApplicationError
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import get_kind
from focusgroups.guide import services as guides
from focusgroups.models import FocusGroup, Message, MessageRole, MessageStatus
from focusgroups.report import analysis
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

GUIDE = {
    "title": "Oat milk subscription",
    "sections": [
        {
            "title": "Breakfast habits",
            "goal": "How milk is bought and used today.",
            "turn_budget": 4,
            "questions": [{"text": "Walk me through your breakfast.", "probes": []}],
        },
        {
            "title": "The subscription",
            "goal": "First reactions to the concept.",
            "turn_budget": 8,
            "questions": [{"text": "What do you make of a monthly oat-milk box?", "probes": ["Why?"]}],
        },
    ],
}
PRIYA_1 = "Honestly, I buy oat milk every week. The price has crept up a lot this year! I'd switch for a deal."
TOM_1 = "I don't really drink it. My kids prefer cow's milk, and I'm not paying more for a carton of water."
PRIYA_2 = "A box would save me a trip. But if cancelling is hard, I'm out. I've been burned by subscriptions before."
ANA_1 = "I love the idea of fewer plastic bottles. Would the cartons be recyclable where I live? That matters to me."


@pytest.fixture
def people(owner):
    return {
        "priya": PersonaFactory(owner=owner, name="Priya Shah"),
        "tom": PersonaFactory(owner=owner, name="Tom Reed"),
        "ana": PersonaFactory(owner=owner, name="Ana Costa"),
    }


@pytest.fixture
def session(owner, people):
    """#1 researcher, #2 Priya, #3 Tom, #4 a failed answer of Ana, #5 researcher, #6 Priya, #7 Ana."""
    fg = FocusGroupFactory(
        owner=owner, title="Oat milk: first reactions", objective="Would people subscribe to oat milk?"
    )
    add_participants(fg, [people["priya"], people["tom"], people["ana"]])
    guides.guide_save(focus_group=fg, data=copy.deepcopy(GUIDE))
    add_message(fg, content="How do you buy milk today?")
    add_message(fg, persona=people["priya"], content=PRIYA_1)
    add_message(fg, persona=people["tom"], content=TOM_1)
    failed = add_message(fg, persona=people["ana"], content="I think the cartons should be free for everyone.")
    Message.objects.filter(pk=failed.pk).update(status=MessageStatus.FAILED, error="Timed out")
    add_message(fg, content="What about a monthly box?")
    add_message(fg, persona=people["priya"], content=PRIYA_2)
    add_message(fg, persona=people["ana"], content=ANA_1)
    return fg


@pytest.fixture
def deferred_jobs(monkeypatch):
    """Queue jobs instead of running them inline, so a test can look at a job still waiting."""
    queued = []
    monkeypatch.setattr("cohorta.jobs.tasks.run_job.apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def _as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _assert_quotes_are_real(focus_group, themes):
    """Every quote is in a complete persona message of this session, as written there."""
    for theme in themes:
        assert theme["quotes"], theme
        for quote in theme["quotes"]:
            message = Message.objects.get(focus_group=focus_group, sequence=quote["sequence"])
            assert message.role == MessageRole.PERSONA and message.status == MessageStatus.COMPLETE
            assert quote["text"].replace(" … ", " ") in " ".join(message.content.split()) or all(
                part in message.content for part in quote["text"].split(" … ")
            )
            assert quote["speaker"] == message.persona.name and quote["persona_id"] == message.persona_id
            assert quote["speaker"] in theme["personas"]


def _speakers(focus_group) -> set[str]:
    return {s.name for s in analysis.session_speakers(focus_group=focus_group)}


# --- the job with the simulator --------------------------------------------------------------------


def test_simulator_analysis_saves_themes_and_report_with_real_quotes(owner, session):
    assert get_kind("session_analysis").label == "Session analysis"
    job = analysis.analysis_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    assert (job.progress_done, job.progress_total) == (2, 2)
    assert job.target_id == str(session.pk) and job.target_type == ContentType.objects.get_for_model(FocusGroup)

    found = analysis.analysis_get(focus_group=session)
    assert found["job_id"] == str(job.pk) and found["simulated"] is True
    assert found["through_sequence"] == 7
    assert found["transcript"] == {
        "first_sequence": 1,
        "last_sequence": 7,
        "messages": 6,  # the failed answer is not transcript
        "omitted": 0,
        "truncated": False,
    }
    themes = found["themes"]
    assert analysis.MIN_THEMES <= len(themes) <= analysis.MAX_THEMES
    _assert_quotes_are_real(session, themes)
    assert {q["sequence"] for t in themes for q in t["quotes"]} <= {2, 3, 6, 7}
    for theme in themes:
        assert set(theme["personas"]) <= _speakers(session)
        assert theme["sentiment"] in analysis.SENTIMENTS

    report = found["report"]
    assert [f["section"] for f in report["findings"]] == ["Breakfast habits", "The subscription"]
    assert report["findings_by"] == "section"
    # The simulator, like a model following the prompt, gives every participant who spoke a stance.
    assert [row["persona"] for row in report["stances"]] == ["Priya Shah", "Tom Reed", "Ana Costa"]
    assert all(row["stance"] in analysis.STANCES and row["summary"] for row in report["stances"])
    assert report["limitations"][-1] == analysis.SYNTHETIC_LIMITATION
    assert report["limitations"].count(analysis.SYNTHETIC_LIMITATION) == 1
    assert report["executive_summary"] and report["recommendations"]

    features = set(UsageEvent.objects.filter(job=job).values_list("feature", flat=True))
    assert features == {"key_themes", "report"}
    assert set(UsageEvent.objects.filter(job=job).values_list("focus_group_id", flat=True)) == {session.pk}


def test_a_second_start_while_running_returns_the_same_job(session, deferred_jobs):
    first = analysis.analysis_start(focus_group=session)
    assert analysis.analysis_start(focus_group=session).pk == first.pk
    assert Job.objects.filter(kind=analysis.JOB_KIND).count() == 1


def test_too_little_transcript_is_refused_with_409(owner, people):
    fg = FocusGroupFactory(owner=owner, participants=[people["priya"]])
    add_message(fg, content="Hello everyone")
    add_message(fg, persona=people["priya"], content="Hi!")
    with pytest.raises(ApplicationError) as info:
        analysis.analysis_start(focus_group=fg)
    assert info.value.status_code == 409 and "at least 2 answers" in info.value.message
    assert analysis.analysis_on_session_end(fg) is None
    response = _as(owner).post(f"/api/v1/focus-groups/{fg.pk}/analysis/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "too_little_transcript"
    assert not Job.objects.filter(kind=analysis.JOB_KIND).exists()


def test_session_end_hook_analyses_once(session):
    job = analysis.analysis_on_session_end(session)
    assert job is not None
    job.refresh_from_db()
    assert job.state == JobState.DONE
    # Nothing new since: no second analysis.
    assert analysis.analysis_on_session_end(session) is None
    add_message(session, persona=session.participants.first().persona, content="One more thing. I'd try it.")
    assert analysis.analysis_on_session_end(session) is not None


# --- the job with the fake LLM (random answers from the schema) ------------------------------------


def test_prompt_is_a_numbered_transcript_and_the_schema_is_strict(session, fake_llm):
    job = analysis.analysis_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    themes_request, report_request = fake_llm.requests
    spec = themes_request.body["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["name"] == "key_themes"
    quote = spec["schema"]["properties"]["themes"]["items"]["properties"]["quotes"]["items"]
    assert quote["properties"]["sequence"]["enum"] == [2, 3, 6, 7]
    # Each quote carries its own sentiment, as strict mode takes it: required, one of an enum.
    assert quote["required"] == ["sequence", "text", "sentiment"] and quote["additionalProperties"] is False
    assert quote["properties"]["sentiment"]["enum"] == ["positive", "neutral", "mixed", "negative"]
    prompt = themes_request.body["messages"][-1]["content"]
    assert "Give each quote its own sentiment: positive, neutral, mixed or negative" in prompt
    assert f"[#2] Priya Shah: {PRIYA_1}" in prompt
    assert "[#1] Moderator: How do you buy milk today?" in prompt
    assert "free for everyone" not in prompt  # the failed answer
    assert session.objective in prompt and "<<<REFERENCE transcript" in prompt

    report_spec = report_request.body["response_format"]["json_schema"]
    assert report_spec["name"] == "report"
    finding = report_spec["schema"]["properties"]["findings"]
    assert finding["minItems"] == finding["maxItems"] == 2
    assert finding["items"]["properties"]["section"]["enum"] == ["Breakfast habits", "The subscription"]
    assert "1. Breakfast habits" in report_request.body["messages"][-1]["content"]

    # The fake model quotes random words: every quote kept is real, the rest were counted and dropped.
    found = analysis.analysis_get(focus_group=session)
    _assert_quotes_are_real(session, found["themes"])
    answer = json.loads(fake_llm.responses[0].content)
    given = sum(len(t["quotes"]) for t in answer["themes"])
    kept = sum(len(t["quotes"]) for t in found["themes"])
    assert kept + found["dropped_quotes"] == given and found["dropped_quotes"] > 0
    assert found["simulated"] is False
    assert found["report"]["limitations"][-1] == analysis.SYNTHETIC_LIMITATION


def _scripted(themes: list[dict]) -> str:
    return json.dumps({"themes": themes})


def test_scripted_quotes_are_kept_repaired_or_dropped(owner, session, people, fake_llm):
    other = FocusGroupFactory(owner=owner, participants=[people["tom"]])
    add_message(other, content="Question?")
    add_message(other, persona=people["tom"], content="Nothing beats a proper pint of semi-skimmed from the farm.")
    theme = {"description": "About price.", "sentiment": "negative", "personas": ["Priya Shah"]}
    fake_llm.add_fault(
        "invalid_output",  # a schema-valid answer we wrote, served instead of the fake one
        content=_scripted(
            [
                {
                    **theme,
                    "title": "Price creep",
                    "personas": ["Priya Shah", "Tom Reed"],
                    "quotes": [
                        # As written, but spacing, case and typographic quotes differ: kept in the message's words.
                        {"sequence": 2, "text": "“the PRICE has   crept up a lot this year!”", "sentiment": "negative"},
                        # A paraphrase: replaced by the closest sentence of message #6.
                        {"sequence": 6, "text": "If cancelling is difficult, I'm out.", "sentiment": "mixed"},
                        # Words from another session's message: dropped.
                        {
                            "sequence": 3,
                            "text": "Nothing beats a proper pint of semi-skimmed from the farm.",
                            "sentiment": "positive",
                        },
                    ],
                },
                {
                    **theme,
                    "title": "Made up",
                    "personas": ["Ana Costa"],
                    "quotes": [
                        {
                            "sequence": 7,
                            "text": "I would buy ten boxes tomorrow, no question about it.",
                            "sentiment": "positive",
                        }
                    ],
                },
                {
                    **theme,
                    "title": "Parts of a quote",
                    "sentiment": "positive",
                    "personas": ["Ana Costa"],
                    "quotes": [
                        {"sequence": 7, "text": "I love the idea … That matters to me.", "sentiment": "positive"}
                    ],
                },
            ]
        ),
    )
    job = analysis.analysis_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    found = analysis.analysis_get(focus_group=session)
    price, parts = found["themes"]
    assert price["title"] == "Price creep"
    assert price["quotes"] == [
        {
            "sequence": 2,
            "text": "The price has crept up a lot this year!",
            "speaker": "Priya Shah",
            "persona_id": people["priya"].pk,
            "repaired": False,
            "sentiment": "negative",
        },
        {
            "sequence": 6,
            "text": "But if cancelling is hard, I'm out.",
            "speaker": "Priya Shah",
            "persona_id": people["priya"].pk,
            "repaired": True,
            "sentiment": "mixed",
        },
    ]
    assert price["personas"] == ["Priya Shah", "Tom Reed"]
    assert parts["quotes"][0]["text"] == "I love the idea … That matters to me."
    assert parts["personas"] == ["Ana Costa"]
    assert (found["dropped_quotes"], found["dropped_themes"], found["repaired_quotes"]) == (2, 1, 1)
    _assert_quotes_are_real(session, found["themes"])


def test_a_quote_pointing_at_another_sessions_message_is_dropped(owner, session, people):
    other = FocusGroupFactory(owner=owner, participants=[people["tom"]])
    for _ in range(8):
        add_message(other, persona=people["tom"], content="Farm milk in glass bottles is the only milk for me.")
    elsewhere = Message.objects.get(focus_group=other, sequence=8)
    raw = {
        "themes": [
            {
                "title": "Glass bottles",
                "description": "",
                "sentiment": "positive",
                "personas": ["Tom Reed"],
                "quotes": [
                    {"sequence": 8, "text": elsewhere.content},  # #8 exists only in the other session
                    {"sequence": 3, "text": elsewhere.content},  # #3 here is Tom, but says something else
                ],
            }
        ]
    }
    themes, counts = analysis.themes_validate(raw, focus_group=session)
    assert themes == [] and counts == {"dropped_quotes": 2, "dropped_themes": 1, "repaired_quotes": 0}


def test_quotes_of_the_moderator_failed_answers_and_bad_numbers_are_dropped(session):
    quotes = [
        {"sequence": 1, "text": "How do you buy milk today?"},  # the researcher
        {"sequence": 4, "text": "I think the cartons should be free for everyone."},  # a failed answer
        {"sequence": 99, "text": "Anything."},
        {"sequence": 10**30, "text": "Anything."},
        {"sequence": -2, "text": "Anything."},
        {"sequence": True, "text": "Anything."},
        {"sequence": "2", "text": PRIYA_1},
        {"sequence": 2, "text": ""},
        "not a quote",
    ]
    raw = {"themes": [{"title": "T", "description": "", "sentiment": "mixed", "personas": [], "quotes": quotes}]}
    themes, counts = analysis.themes_validate(raw, focus_group=session)
    assert themes == [] and counts["dropped_quotes"] == len(quotes)
    # The simulator's leniency does not extend to wrong numbers either.
    themes, counts = analysis.themes_validate(raw, focus_group=session, lenient_text=True)
    assert themes == []


def test_personas_must_have_spoken_and_names_are_matched(session, owner):
    silent = PersonaFactory(owner=owner, name="Sam Silent")
    add_participants(session, [silent])
    raw = {
        "themes": [
            {
                "title": "Cartons",
                "description": "Recycling.",
                "sentiment": "bogus",
                "personas": ["sam silent", "Nobody Real", "ana costa", "Priya", "Priya Shah"],
                "quotes": [
                    {"sequence": 7, "text": "Would the cartons be recyclable where I live?"},
                    {"sequence": 7, "text": "would the cartons be recyclable where i live?"},  # the same again
                ],
            }
        ]
    }
    [theme], counts = analysis.themes_validate(raw, focus_group=session)
    assert theme["personas"] == ["Ana Costa", "Priya Shah"]
    assert theme["sentiment"] == "mixed"
    assert len(theme["quotes"]) == 1 and counts["dropped_quotes"] == 1


def test_each_quote_keeps_its_own_sentiment_or_takes_its_themes(session):
    raw = {
        "themes": [
            {
                "title": "Price",
                "description": "",
                "sentiment": "negative",
                "personas": [],
                "quotes": [
                    {"sequence": 2, "text": "The price has crept up a lot this year!", "sentiment": "neutral"},
                    {"sequence": 3, "text": "I don't really drink it."},  # none given: the theme's
                    {"sequence": 6, "text": "A box would save me a trip.", "sentiment": "thrilled"},  # unknown
                    {"sequence": 7, "text": "I love the idea of fewer plastic bottles.", "sentiment": "positive"},
                ],
            },
            {
                "title": "Cartons",
                "description": "",
                "sentiment": "bogus",
                "personas": [],
                "quotes": [{"sequence": 7, "text": "That matters to me."}],
            },
        ]
    }
    price, cartons = analysis.themes_validate(raw, focus_group=session)[0]
    assert price["sentiment"] == "negative"
    assert [(q["sequence"], q["sentiment"]) for q in price["quotes"]] == [
        (2, "neutral"),
        (3, "negative"),
        (6, "negative"),
        (7, "positive"),
    ]
    assert cartons["sentiment"] == "mixed" and cartons["quotes"][0]["sentiment"] == "mixed"


def test_a_theme_quotes_each_message_once_and_the_same_words_once(session, people):
    echo_tom = add_message(session, persona=people["tom"], content="I'd try it once. Then we'll see.")
    echo_ana = add_message(session, persona=people["ana"], content="I’d   try it ONCE. Honestly.")
    raw = {
        "themes": [
            {
                "title": "Trying it",
                "description": "",
                "sentiment": "mixed",
                "personas": [],
                "quotes": [
                    {"sequence": 2, "text": "The price has crept up a lot this year!"},
                    {"sequence": 2, "text": "I'd switch for a deal."},  # the same message again
                    {"sequence": echo_tom.sequence, "text": "I'd try it once."},
                    {"sequence": echo_ana.sequence, "text": "I’d try it once."},  # the same words, someone else
                ],
            }
        ]
    }
    [theme], counts = analysis.themes_validate(raw, focus_group=session)
    assert [(q["sequence"], q["text"]) for q in theme["quotes"]] == [
        (2, "The price has crept up a lot this year!"),
        (echo_tom.sequence, "I'd try it once."),
    ]
    assert counts["dropped_quotes"] == 2


def test_quote_matching():
    content = "I’d pay — maybe — £3 a week.\nNot more. Definitely not more than that!"
    # Found as written: the message's own wording, with the sentence's own end.
    assert analysis.quote_match("i'd pay - maybe - £3 a week", content) == ("I’d pay — maybe — £3 a week.", False)
    assert analysis.quote_match("Not more... not more than that", content) == (
        "Not more. … not more than that!",
        False,
    )
    assert analysis.quote_match("more than that, Definitely", content) is None  # parts out of order
    assert analysis.quote_match("Definitely no more than that.", content) == (
        "Definitely not more than that!",
        True,
    )
    assert analysis.quote_match("Something else entirely, about cats.", content) is None
    assert analysis.quote_match("…", content) is None


def test_quote_matching_after_a_letter_that_lowers_to_two():
    # "İ" lowers to "i" and a combining dot: the words found after it are still cut from the message whole
    # (they came out one letter late, or past the end of the message).
    content = "İstanbul was lovely. The price was too high for me."
    assert analysis.quote_match("the price was too high", content) == ("The price was too high", False)
    assert analysis.quote_match("too high for me", content) == ("too high for me.", False)
    assert analysis.quote_match("İstanbul was lovely... for me", content) == ("İstanbul was lovely. … for me.", False)
    assert analysis.quote_match("I miss it", "Back from İstanbul, I miss it") == ("I miss it", False)


# --- the report ------------------------------------------------------------------------------------


def test_report_shape_is_fixed_in_code():
    participants = [analysis.Speaker("Priya Shah", 1), analysis.Speaker("Tom Reed", 2)]
    raw = {
        "executive_summary": "  Mixed.  ",
        "findings": [
            {"section": "The subscription", "summary": "Liked.", "key_points": ["Saves a trip", "Saves a trip"]},
            {"section": "the subscription", "summary": "Doubts.", "key_points": ["Cancelling"]},
            {"section": "Invented", "summary": "?", "key_points": []},
        ],
        "stances": [
            {"persona_id": 2, "stance": "sceptical", "summary": "Price."},
            {"persona_id": 1, "stance": "positive", "summary": "Convenience."},
        ],
        "recommendations": ["Easy cancelling", " ", "Easy cancelling"],
        "limitations": [
            "Small panel.",
            "These are synthetic respondents generated by an AI model, not real people; "
            "treat the findings as hypotheses to test with real customers",
        ],
    }
    report = analysis.report_finalise(
        raw, sections=["Breakfast habits", "The subscription"], participants=participants, extra_limitations=["Cut."]
    )
    assert report["executive_summary"] == "Mixed."
    assert report["findings"] == [
        {"section": "Breakfast habits", "summary": "", "key_points": []},
        {"section": "The subscription", "summary": "Liked. Doubts.", "key_points": ["Saves a trip", "Cancelling"]},
    ]
    assert [(s["persona"], s["stance"], s["persona_id"]) for s in report["stances"]] == [
        ("Priya Shah", "positive", 1),
        ("Tom Reed", "sceptical", 2),
    ]
    assert report["recommendations"] == ["Easy cancelling"]
    assert report["limitations"] == ["Small panel.", "Cut.", analysis.SYNTHETIC_LIMITATION]
    # Whatever the model says (or does not), the sentence is there.
    assert analysis.report_finalise({}, sections=["Overall"], participants=[])["limitations"] == [
        analysis.SYNTHETIC_LIMITATION
    ]


def test_every_participant_has_exactly_one_stance_row_keyed_by_id():
    """The model left Priya out, gave Tom twice, an id from nowhere, a row by name and one under a bool:
    each participant gets one row, in panel order, named by us; the ones without a stance say so."""
    participants = [
        analysis.Speaker("Priya Shah", 11),
        analysis.Speaker("Tom Reed", 12),
        analysis.Speaker("Ana Costa", 13),
        analysis.Speaker("Sam Silent", 14),
    ]
    raw = {
        "stances": [
            {"persona_id": 12, "stance": "sceptical", "summary": "Tom: price."},
            {"persona_id": 12, "stance": "negative", "summary": "Tom again."},
            {"persona_id": 99, "stance": "positive", "summary": "Someone from another session."},
            {"persona": "Priya Shah", "stance": "positive", "summary": "By name only."},
            {"persona_id": True, "stance": "positive", "summary": "A bool is not an id."},
            {"persona_id": 13, "stance": "made-up", "summary": "An unknown stance."},
            "not a row",
        ]
    }
    report = analysis.report_finalise(raw, sections=["Overall"], participants=participants, spoke={11, 12, 13})
    assert report["stances"] == [
        {"persona": "Priya Shah", "persona_id": 11, "stance": "unclear", "summary": analysis.NO_STANCE_NOTE},
        {"persona": "Tom Reed", "persona_id": 12, "stance": "sceptical", "summary": "Tom: price."},
        {"persona": "Ana Costa", "persona_id": 13, "stance": "unclear", "summary": analysis.NO_STANCE_NOTE},
        {"persona": "Sam Silent", "persona_id": 14, "stance": "unclear", "summary": analysis.NO_STANCE_SILENT_NOTE},
    ]
    assert analysis.NO_STANCE_NOTE == "No clear stance recorded."


def test_the_report_asks_stances_by_id_and_the_page_names_everyone_from_the_database(
    client, owner, session, people, fake_llm
):
    silent = PersonaFactory(owner=owner, name="Sam Silent", age=51, occupation="Postman", location="Leeds")
    add_participants(session, [silent])
    priya, tom, ana = people["priya"], people["tom"], people["ana"]
    theme = {"description": "About price.", "sentiment": "negative", "personas": ["Priya Shah"]}
    feel = {"sentiment": "negative"}
    fake_llm.add_fault(
        "invalid_output",
        content=_scripted(
            [
                {**theme, "title": "Price", "quotes": [{"sequence": 2, "text": "The price has crept up", **feel}]},
                {**theme, "title": "Cancelling", "quotes": [{"sequence": 6, "text": "if cancelling is hard", **feel}]},
                {
                    **theme,
                    "title": "Cartons",
                    "quotes": [{"sequence": 7, "text": "Would the cartons be recyclable", **feel}],
                },
            ]
        ),
    )
    # A schema-valid report that leaves Priya out and gives Tom twice.
    fake_llm.add_fault(
        "invalid_output",
        content=json.dumps(
            {
                "executive_summary": "Mixed.",
                "findings": [
                    {"section": "Breakfast habits", "summary": "Weekly.", "key_points": []},
                    {"section": "The subscription", "summary": "Doubts.", "key_points": []},
                ],
                "stances": [
                    {"persona_id": tom.pk, "stance": "sceptical", "summary": "Won't pay more for water."},
                    {"persona_id": tom.pk, "stance": "positive", "summary": "Divya loves it, from Bengaluru."},
                    {"persona_id": ana.pk, "stance": "positive", "summary": "Likes fewer plastic bottles."},
                ],
                "recommendations": ["Make cancelling easy."],
                "limitations": [],
            }
        ),
    )
    job = analysis.analysis_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    report_request = fake_llm.requests[-1]
    stance = report_request.body["response_format"]["json_schema"]["schema"]["properties"]["stances"]
    assert stance["items"]["required"] == ["persona_id", "stance", "summary"]
    assert stance["items"]["properties"]["persona_id"]["enum"] == [priya.pk, tom.pk, ana.pk]  # who spoke
    assert stance["minItems"] == stance["maxItems"] == 3
    prompt = report_request.body["messages"][-1]["content"]
    assert f"- id {priya.pk}: Priya Shah ({priya.age}, " in prompt
    assert f"{tom.pk} for Tom Reed" in prompt and "never by name" in prompt
    assert f"id {silent.pk}" not in prompt

    rows = analysis.analysis_get(focus_group=session)["report"]["stances"]
    assert [(r["persona_id"], r["stance"], r["summary"]) for r in rows] == [
        (priya.pk, "unclear", analysis.NO_STANCE_NOTE),
        (tom.pk, "sceptical", "Won't pay more for water."),
        (ana.pk, "positive", "Likes fewer plastic bottles."),
        (silent.pk, "unclear", analysis.NO_STANCE_SILENT_NOTE),
    ]
    # Names come from our database when shown: a persona renamed since the analysis shows its new name.
    tom.name = "Thomas Reed"
    tom.save(update_fields=["name"])
    client.force_login(owner)
    content = _page(client, session)
    table = content[content.index('id="report-stances"') :]
    for person in (priya, ana, silent):
        assert f'<tr data-persona-id="{person.pk}"><td class="fw-semibold">{person.name}</td>' in table
    assert f'<tr data-persona-id="{tom.pk}"><td class="fw-semibold">Thomas Reed</td>' in table
    assert table.count("<tr data-persona-id=") == 4
    assert "No clear stance recorded." in table and "Bengaluru" not in table
    body = _as(owner).get(f"/api/v1/focus-groups/{session.pk}/analysis/").json()
    assert [r["persona"] for r in body["report"]["stances"]] == ["Priya Shah", "Thomas Reed", "Ana Costa", "Sam Silent"]


def test_without_a_guide_findings_are_by_theme(owner, people):
    fg = FocusGroupFactory(owner=owner, participants=[people["priya"], people["tom"]])
    add_message(fg, persona=people["priya"], content=PRIYA_1)
    add_message(fg, persona=people["tom"], content=TOM_1)
    job = analysis.analysis_start(focus_group=fg)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    found = analysis.analysis_get(focus_group=fg)
    assert found["report"]["findings_by"] == "theme"
    expected = list(dict.fromkeys(t["title"] for t in found["themes"])) or ["Overall"]
    assert [f["section"] for f in found["report"]["findings"]] == expected


def test_a_long_transcript_keeps_the_most_recent_part_and_says_so(session, people, fake_llm):
    for i in range(30):
        add_message(session, persona=people["tom"], content=f"Point number {i}. " + "I keep talking. " * 20)
    transcript = analysis.transcript_build(focus_group=session, max_chars=3000)
    assert transcript.truncated and transcript.last_sequence == 37
    assert len(transcript.text) <= 3000 and transcript.text.startswith(f"[#{transcript.first_sequence}] ")
    assert transcript.omitted == 36 - transcript.messages  # 36 complete messages in all
    assert "Point number 29." in transcript.text and "Point number 0." not in transcript.text
    limitation = analysis.truncation_limitation(transcript)
    assert f"#{transcript.first_sequence}–#37" in limitation

    from focusgroups.report import jobs as jobs_analysis

    prompt = jobs_analysis.themes_prompt(session, transcript)
    assert f"starts at message #{transcript.first_sequence} and leaves out the {transcript.omitted} earlier" in prompt


def test_failures_keep_the_previous_analysis(session, fake_llm):
    first = analysis.analysis_start(focus_group=session)
    fake_llm.add_fault("garbage_output", times=2)
    second = analysis.analysis_start(focus_group=session)
    second.refresh_from_db()
    assert second.state == JobState.FAILED and second.error
    assert analysis.analysis_get(focus_group=session)["job_id"] == str(first.pk)


# --- the page --------------------------------------------------------------------------------------


def _page(client, fg) -> str:
    response = client.get(reverse("focusgroups:report", args=[fg.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_page_before_any_analysis_offers_the_button(client, owner, session):
    client.force_login(owner)
    content = _page(client, session)
    assert "Not analysed yet" in content and "Analyse the session" in content
    assert reverse("focusgroups:analyse", args=[session.pk]) in content
    assert 'href="' + reverse("focusgroups:report", args=[session.pk]) + '"' in content  # the tab
    assert reverse("focusgroups:export", args=[session.pk, "transcript-csv"]) in content
    assert reverse("focusgroups:export", args=[session.pk, "report-docx"]) not in content


def test_page_with_too_little_transcript_explains(client, owner):
    client.force_login(owner)
    fg = FocusGroupFactory(owner=owner)
    content = _page(client, fg)
    assert "too little to analyse" in content and 'id="analyse-session"' not in content
    response = client.post(reverse("focusgroups:analyse", args=[fg.pk]))
    assert response.status_code == 409 and "at least 2 answers" in response.content.decode()


def test_page_while_running_polls_and_reloads_when_done(client, owner, session, deferred_jobs):
    client.force_login(owner)
    response = client.post(reverse("focusgroups:analyse", args=[session.pk]))
    assert response.status_code == 302
    job = Job.objects.get(kind=analysis.JOB_KIND)
    content = _page(client, session)
    assert 'id="report-progress"' in content and "Analysing the session" in content
    assert "hx-trigger=\"jobs-changed from:body delay:200ms, every 3s [document.body.dataset.live !== '1']\"" in content
    assert f"?poll={job.pk}" in content and "Analyse the session" not in content
    url = reverse("focusgroups:report", args=[session.pk]) + f"?poll={job.pk}"
    poll = client.get(url, HTTP_HX_REQUEST="true")
    assert poll.status_code == 200
    assert 'id="report-progress"' in poll.content.decode() and "<html" not in poll.content.decode()
    Job.objects.filter(pk=job.pk).update(state=JobState.DONE, result=None, finished_at=timezone.now())
    assert client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"


def test_page_when_done_shows_themes_report_and_downloads(client, owner, session):
    client.force_login(owner)
    analysis.analysis_start(focus_group=session)
    found = analysis.analysis_get(focus_group=session)
    content = _page(client, session)
    detail = reverse("focusgroups:detail", args=[session.pk])
    for theme in found["themes"]:
        assert theme["title"] in content
        for quote in theme["quotes"]:
            assert f'href="{detail}#msg-{quote["sequence"]}"' in content
    assert "Executive summary" in content and "Where each persona stands" in content
    assert "Breakfast habits" in content and "The subscription" in content
    assert analysis.SYNTHETIC_LIMITATION in content
    assert "Re-run analysis" in content and "window.print()" in content and "@media print" in content
    for kind in ("report-md", "report-docx", "transcript-csv", "transcript-md", "json"):
        assert reverse("focusgroups:export", args=[session.pk, kind]) in content
    assert 'id="report-stale"' not in content
    add_message(session, content="One more question?")
    assert "1 message came after this analysis" in _page(client, session)


def test_page_shows_a_failed_run(client, owner, session, fake_llm):
    client.force_login(owner)
    fake_llm.add_fault("garbage_output", times=2)
    analysis.analysis_start(focus_group=session)
    content = _page(client, session)
    assert "The last analysis did not finish" in content and "Try again" in content


def test_archived_session_cannot_be_analysed(client, owner, session):
    FocusGroup.objects.filter(pk=session.pk).update(archived=True)
    client.force_login(owner)
    assert client.post(reverse("focusgroups:analyse", args=[session.pk])).status_code == 409
    assert _as(owner).post(f"/api/v1/focus-groups/{session.pk}/analysis/").status_code == 409


# --- the API ---------------------------------------------------------------------------------------


def test_api_analysis_404_then_202_then_200(owner, session):
    api = _as(owner)
    url = f"/api/v1/focus-groups/{session.pk}/analysis/"
    response = api.get(url)
    assert response.status_code == 404
    assert "not been analysed yet" in response.json()["error"]["message"]
    response = api.post(url)
    assert response.status_code == 202 and response.json()["kind"] == analysis.JOB_KIND
    body = api.get(url).json()
    assert body["job_id"] == response.json()["id"]
    assert body["themes"] and body["report"]["limitations"][-1] == analysis.SYNTHETIC_LIMITATION
    assert set(body["themes"][0]) == {"title", "description", "sentiment", "personas", "persona_ids", "quotes"}
    assert all(q["sentiment"] in analysis.QUOTE_SENTIMENTS for t in body["themes"] for q in t["quotes"])
    assert body["transcript"]["last_sequence"] == 7


# --- who may see it --------------------------------------------------------------------------------


def test_another_user_gets_404_everywhere(client, owner, other_user, session):
    analysis.analysis_start(focus_group=session)
    client.force_login(other_user)
    urls = [reverse("focusgroups:report", args=[session.pk])] + [
        reverse("focusgroups:export", args=[session.pk, kind])
        for kind in ("transcript-csv", "transcript-md", "report-md", "report-docx", "json")
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("focusgroups:analyse", args=[session.pk])).status_code == 404
    api = _as(other_user)
    base = f"/api/v1/focus-groups/{session.pk}"
    assert api.get(f"{base}/analysis/").status_code == 404
    assert api.post(f"{base}/analysis/").status_code == 404
    for kind in ("transcript-csv", "transcript-md", "report-md", "report-docx", "json"):
        assert api.get(f"{base}/exports/{kind}/").status_code == 404, kind
    assert Job.objects.filter(kind=analysis.JOB_KIND).count() == 1
    # Anonymous: sent to log in (pages) or refused (API).
    assert APIClient().get(f"{base}/analysis/").status_code in (401, 403)
