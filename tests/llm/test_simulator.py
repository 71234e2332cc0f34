"""The offline simulator reads like the product: personas within the brief and grounded in its segments,
guides about the objective, a moderator that follows the guide, answers that come from each profile, image
descriptions from the picture's own properties. Always labelled simulated, and the same every run."""

import base64
import io
import json
import random
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from billing.services import credits_grant
from cohorta.jobs.models import JobState
from focusgroups import conversation
from focusgroups.autonomous import runs as autonomous
from focusgroups.autonomous import turns as autonomous_turns
from focusgroups.guide import services as guides
from focusgroups.models import DiscussionGuide, FocusGroup, Message, MessageRole, Participant
from focusgroups.report import analysis
from llm import simulator_analysis
from llm.gateway import complete
from personas import generation
from personas.models import Persona
from personas.services import persona_create

pytestmark = pytest.mark.django_db(transaction=True)

AUDIENCE = "Busy parents of young children who cook on weeknights and are curious about meal kits."
CITIES = {"Leeds", "Bristol", "Glasgow"}


@pytest.fixture
def funded(owner, settings):
    settings.LLM_SIMULATED = True
    credits_grant(user=owner, amount=200, idempotency_key="test:fund")
    return owner


def _panel(owner, **brief):
    brief = generation.brief_start(owner=owner, description=AUDIENCE, **brief)
    brief.refresh_from_db()
    assert brief.job.state == JobState.DONE, brief.job.error
    return list(Persona.objects.filter(brief=brief).order_by("name"))  # profiles are written in parallel


# --- personas -----------------------------------------------------------------------------------


def test_offline_personas_keep_to_the_brief(funded, other_user):
    panel = _panel(
        funded, count=6, age_min=25, age_max=50, locations="UK: Leeds, Bristol, Glasgow", gender_mix="roughly even"
    )
    assert len(panel) == 6 and all(p.simulated for p in panel)
    assert all(25 <= p.age <= 50 for p in panel), [p.age for p in panel]
    assert {p.location for p in panel} == {"Leeds, UK", "Bristol, UK", "Glasgow, UK"}
    assert sorted(p.gender for p in panel) == ["Female"] * 3 + ["Male"] * 3
    assert not any(p.brief_mismatch for p in panel)  # nothing to sketch again, nothing flagged
    # Names of the place, the job and household of the audience, a backstory about that very person.
    for persona in panel:
        first = persona.name.split()[0]
        assert persona.backstory.startswith(f"{first} is {persona.age}, lives in {persona.location}")
        assert "child" in persona.household.lower() or "toddler" in persona.household.lower()
        assert "meal kits" in persona.backstory
    assert len({p.name.split()[-1] for p in panel}) == 6  # no two share a surname
    # Deterministic: the same brief from someone else (no names to avoid) gives the same people.
    credits_grant(user=other_user, amount=50, idempotency_key="test:other")
    again = _panel(other_user, count=6, age_min=25, age_max=50, locations="UK: Leeds, Bristol, Glasgow",
                   gender_mix="roughly even")  # fmt: skip
    assert [(p.name, p.age, p.location, p.occupation) for p in again] == [
        (p.name, p.age, p.location, p.occupation) for p in panel
    ]


def test_offline_personas_take_the_jobs_the_brief_names(funded):
    brief = generation.brief_start(
        owner=funded, description="NHS nurses who work night shifts and buy lunch on the go.", count=4
    )
    personas = Persona.objects.filter(brief=brief)
    assert all("nurse" in p.occupation.lower() for p in personas), [p.occupation for p in personas]


def test_offline_personas_cite_the_segment_they_reflect(funded):
    segments = SimpleUploadedFile(
        "segments.csv",
        b"segment,share,need\nBudget jugglers,40%,cheapest per portion\nTime-poor professionals,35%,speed\n",
        "text/csv",
    )
    panel = _panel(funded, count=4, files=[segments])
    cited = [p.grounding[0]["segment"] for p in panel]
    assert sorted(cited) == ["Budget jugglers"] * 2 + ["Time-poor professionals"] * 2
    for persona in panel:
        segment = persona.grounding[0]["segment"]
        assert f"based on the “{segment}” segment of the research" in persona.backstory
    jugglers = [p for p in panel if p.grounding[0]["segment"] == "Budget jugglers"]
    assert all("cheapest per portion" in p.backstory for p in jugglers)


# --- the discussion guide -----------------------------------------------------------------------


def test_an_offline_guide_is_about_the_objective(funded):
    session = FocusGroup.objects.create(
        owner=funded,
        title="Lapsed subscribers",
        objective="Understand why busy parents cancel meal kit subscriptions and what would win them back.",
        concept="FreshBox: a weekly box of three recipes with pre-portioned ingredients, £29 a week.",
    )
    job = guides.guide_generate_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    data = DiscussionGuide.objects.get(focus_group=session).data
    questions = [q["text"] for section in data["sections"] for q in section["questions"]]
    text = " ".join(questions).lower()
    assert "Why do you cancel meal kit subscriptions?" in questions
    assert "What would win you back?" in questions
    assert "freshbox" in text and "£29 a week" in text
    assert not re.search(r"grocery delivery|streaming|budgeting app|insurance", text)  # no unrelated products
    assert guides.guide_validate(data) == data


# --- the autonomous moderator and the answers ------------------------------------------------------


@pytest.fixture
def turns(monkeypatch):
    queue = []
    monkeypatch.setattr("focusgroups.tasks.autonomous_turn.apply_async", lambda args, **kw: queue.append(args))

    def drain(limit=60):
        done = []
        while queue and len(done) < limit:
            run_id, turn = queue.pop(0)
            done.append(autonomous_turns.turn_run(run_id=run_id, turn=turn))
        return done

    return drain


GUIDE = {
    "title": "Meal kits",
    "sections": [
        {
            "title": "Habits",
            "goal": "How they cook now",
            "turn_budget": 4,
            "questions": [
                {"text": "How do you plan weeknight dinners?", "probes": ["What gets in the way?", "Why is that?"]}
            ],
        },
        {
            "title": "The concept",
            "goal": "Reactions to FreshBox",
            "turn_budget": 4,
            "questions": [
                {"text": "What is your first reaction to FreshBox?", "probes": ["What worries you?"]},
                {"text": "What would make you cancel?", "probes": []},
            ],
        },
    ],
}

PRICE_FIRST = {
    "name": "Dave Okafor",
    "age": 41,
    "occupation": "Delivery driver",
    "income_bracket": "£20–25k",
    "values": ["Value for money", "Thrift"],
    "frustrations": ["Hidden fees", "Prices creeping up"],
    "buying_behaviour": "Buys the cheapest that does the job and waits for offers; compares prices on his phone.",
}
TECH_FIRST = {
    "name": "Mei Lin",
    "age": 27,
    "occupation": "Software developer",
    "income_bracket": "£45–55k",
    "values": ["Innovation", "Efficiency"],
    "interests": ["New apps and gadgets", "Home automation"],
    "frustrations": ["Clunky apps", "Features that don't sync"],
    "buying_behaviour": "An early adopter: researches features and specs online and manages everything from an app.",
}


def _session(owner, people) -> FocusGroup:
    session = FocusGroup.objects.create(
        owner=owner,
        title="Meal kits",
        objective="Why parents try meal kits",
        concept="FreshBox: a weekly meal kit with three recipes, £29 a week, managed in the FreshBox app.",
    )
    for position, data in enumerate(people):
        Participant.objects.create(
            focus_group=session, persona=persona_create(owner=owner, data=data), position=position
        )
    DiscussionGuide.objects.create(focus_group=session, data=GUIDE)
    return session


def test_the_offline_moderator_asks_the_guides_questions(funded, turns):
    third = {"name": "Sofia Romano", "age": 46, "occupation": "Teacher", "values": ["Sustainability"]}
    session = _session(funded, [PRICE_FIRST, TECH_FIRST, third])
    autonomous.run_start(focus_group=session)
    turns()
    lines = list(
        Message.objects.filter(focus_group=session, role=MessageRole.MODERATOR)
        .order_by("sequence")
        .values_list("content", flat=True)
    )
    asked = [q["text"] for s in GUIDE["sections"] for q in s["questions"]]
    probes = [p for s in GUIDE["sections"] for q in s["questions"] for p in q["probes"]]
    assert lines and lines[0] == f"Welcome, everyone, and thank you for joining. {asked[0]}"
    for line in lines:
        from_the_guide = any(q in line for q in asked) or any(p[1:] in line for p in probes)
        closing = line.startswith("Thank you all")
        assert from_the_guide or closing or "do you agree with" in line, line
    assert all(q in " ".join(lines) for q in asked)  # every question of the guide was asked, in its words

    # The analysis reads that transcript: themes are the angles people took, quoting their own words.
    job = analysis.analysis_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    found = analysis.analysis_get(focus_group=session)
    titles = [theme["title"] for theme in found["themes"]]
    assert "Price has to be clearly worth it" in titles and "The app and its features decide it" in titles
    price = next(t for t in found["themes"] if t["title"] == "Price has to be clearly worth it")
    assert "Dave Okafor" in price["personas"] and all(not q.get("repaired") for q in price["quotes"])
    quotes = [q for theme in found["themes"] for q in theme["quotes"]]
    assert all(q["sentiment"] == simulator_analysis.quote_feeling(q["text"]) for q in quotes)
    stances = {row["persona"]: row for row in found["report"]["stances"]}
    assert stances["Dave Okafor"]["stance"] == "sceptical" and "cheaper" in stances["Dave Okafor"]["summary"]
    assert stances["Mei Lin"]["stance"] == "positive" and "app" in stances["Mei Lin"]["summary"]
    assert not re.search(r"language-learning|skincare|streaming", json.dumps(found, default=str))  # nothing made up


def test_offline_themes_give_each_quote_a_sentiment_from_its_words():
    schema = analysis.themes_schema(sequences=[2, 3, 4, 5, 6, 7], speakers=["Dave Okafor", "Mei Lin", "Sofia Romano"])
    prompt = "\n".join(
        [
            "[#1] Moderator: What do you make of FreshBox?",
            "[#2] Dave Okafor: The price creeping up is what makes me cancel.",
            "[#3] Mei Lin: I love how the app works.",
            "[#4] Sofia Romano: I'd compare the price with the supermarket first.",
            "[#5] Dave Okafor: The app is clunky but the features are good.",
            "[#6] Sofia Romano: Less packaging is nice.",
            "[#7] Mei Lin: I worry about the plastic packaging.",
        ]
    )
    answer = simulator_analysis.themes(schema, prompt, {"themes": []}, random.Random(1))
    feelings = {q["sequence"]: (q["text"], q["sentiment"]) for t in answer["themes"] for q in t["quotes"]}
    assert feelings == {
        2: ("The price creeping up is what makes me cancel.", "negative"),
        3: ("I love how the app works.", "positive"),
        4: ("I'd compare the price with the supermarket first.", "neutral"),
        5: ("The app is clunky but the features are good.", "mixed"),
        6: ("Less packaging is nice.", "positive"),
        7: ("I worry about the plastic packaging.", "negative"),
    }
    # The theme keeps the sentiment of its angle.
    assert {t["title"]: t["sentiment"] for t in answer["themes"]}["Price has to be clearly worth it"] == "negative"


def test_answers_follow_each_persona_and_the_question(funded):
    session = _session(funded, [PRICE_FIRST, TECH_FIRST])
    question = Message.objects.create(
        focus_group=session, sequence=1, role=MessageRole.MODERATOR, content="What is your first reaction to FreshBox?"
    )
    answers = {}
    for participant in session.participants.select_related("persona"):
        result = complete(
            feature="persona_response",
            messages=conversation.build_persona_messages(
                focus_group=session, persona=participant.persona, prompt_message=question
            ),
            user=funded,
        )
        assert result.simulated
        answers[participant.persona.name] = result.text
    price, tech = answers["Dave Okafor"], answers["Mei Lin"]
    assert price != tech and "FreshBox" in price and "FreshBox" in tech
    assert re.search(r"cost|price|pound|cheaper|£29", price) and not re.search(r"\bapp\b|feature", price)
    assert re.search(r"\bapp\b|feature", tech) and not re.search(r"\bcost|pound|cheaper", tech)


# --- images -------------------------------------------------------------------------------------


def _picture(size=(1200, 800)) -> bytes:
    image = Image.new("RGB", size, (20, 35, 90))  # navy
    ImageDraw.Draw(image).rectangle((450, 250, 750, 550), fill=(240, 140, 30))  # an orange square in the middle
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_offline_image_description_describes_the_picture(funded):
    job = generation.image_describe_start(
        owner=funded, upload=SimpleUploadedFile("poster.png", _picture(), "image/png")
    )
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    text = job.result["description"]
    assert job.result["simulated"] and text.startswith("Simulated description")
    assert "landscape" in text and "1200 × 800 pixels, 3:2" in text
    assert re.search(r"Dominant colours: navy blue \(about \d+%\) and orange", text)
    assert "flat graphic" in text and "centre is lighter" in text

    portrait = base64.b64encode(_picture((600, 900))).decode()
    result = complete(
        feature="asset_description",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{portrait}"}},
                ],
            }
        ],
        user=funded,
    )
    assert "A portrait flat graphic" in result.text and "cannot be read without a vision model" in result.text
