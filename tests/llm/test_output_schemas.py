"""No billed answer is thrown away: every structured-output schema the app sends, fed 2,000 random answers that
the schema allows, goes through the gateway's fitting and validation and then the service that stores it
without an error.

The answers come from ``llm.schema_faker`` with edge cases switched on: strings at exactly their
``maxLength`` (or a long paragraph without one), lists at ``maxItems``, numbers at their bounds, and blank,
space-only or padded strings. A third of them come from the schema with every ``maxLength`` doubled, which
is what a model answering in strict mode may do, since strict mode does not enforce string lengths."""

import json

import jsonschema
import pytest

from focusgroups.autonomous import turns as autonomous_turns
from focusgroups.guide import services as guides
from focusgroups.models import AutonomousRun
from focusgroups.report import analysis, live_themes
from llm.gateway import structured_output
from llm.schema_faker import fake_instance
from personas.models import Persona
from personas.schemas import (
    DETAIL_PROFILE_SCHEMA,
    MODIFIED_PROFILE_SCHEMA,
    basic_profiles_schema,
    detail_to_fields,
    profile_repair,
)
from personas.services import persona_create, persona_update
from tests.focusgroups.factories import FocusGroupFactory, add_message, add_participants
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db

N = 2000


def _doubled(schema):
    """``schema`` with every maxLength doubled: the answers a model may give that strict mode lets through."""
    if isinstance(schema, dict):
        return {key: value * 2 if key == "maxLength" else _doubled(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_doubled(item) for item in schema]
    return schema


def answers(schema, *, seed: str, count: int = N):
    """``count`` answers to ``schema`` as the model's text, each parsed the way the gateway parses it."""
    loose = _doubled(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for i in range(count):
        over = i % 3 == 2
        value = fake_instance(loose if over else schema, seed=f"{seed}:{i}", fill=0.35, ragged=0.15)
        if not over:
            validator.validate(value)  # the faker keeps its promise: this answer is schema-valid
        yield i, value, structured_output(json.dumps(value, ensure_ascii=False), schema)


def test_generated_profiles_are_all_saved(owner):
    basic_schema = basic_profiles_schema(1)
    reached = set()
    for i, _, basic in answers(basic_schema, seed="basic"):
        detail = structured_output(
            json.dumps(fake_instance(_doubled(DETAIL_PROFILE_SCHEMA), seed=f"detail:{i}", fill=0.35, ragged=0.15)),
            DETAIL_PROFILE_SCHEMA,
        )
        profile = basic["personas"][0]
        persona = persona_create(owner=owner, data=profile_repair({**profile, **detail_to_fields(detail)}))
        reached |= {
            name
            for name in ("gender", "income_bracket", "household")
            if len(getattr(persona, name)) >= Persona._meta.get_field(name).max_length - 1
        }
        assert persona.name.strip() and persona.name == persona.name.strip()
    assert Persona.objects.filter(owner=owner).count() == N
    # The edge cases were exercised: values at (or cut to just under) their column's length were saved.
    assert reached == {"gender", "income_bracket", "household"}


def test_ai_modifications_are_all_saved(owner):
    persona = PersonaFactory(owner=owner, name="Priya Shah", tech_savviness="medium")
    for _, _, data in answers(MODIFIED_PROFILE_SCHEMA, seed="modify"):
        before = persona.profile_data()
        persona = persona_update(
            persona=persona, data=profile_repair(detail_to_fields(data), current=before), note="AI: change"
        )
        assert persona.name.strip()


def test_generated_guides_all_validate(owner):
    for _, _, data in answers(guides.GUIDE_SCHEMA, seed="guide"):
        guide = guides.guide_validate(guides.guide_repair(data, title="Meal kits"))
        assert guide["title"] and all(s["title"] and s["questions"] for s in guide["sections"])


@pytest.fixture
def session(owner):
    people = [PersonaFactory(owner=owner, name=name) for name in ("Priya Shah", "Tom Reed", "Ana Costa")]
    session = FocusGroupFactory(owner=owner)
    add_participants(session, people)
    add_message(session, content="How do you buy milk today?")
    for person in people:
        add_message(session, persona=person, content=f"I buy oat milk every week, says {person.name}.")
    return session


def test_generated_themes_are_all_read(session):
    speakers = analysis.session_speakers(focus_group=session)
    sequences = list(session.messages.filter(persona__isnull=False).values_list("sequence", flat=True))
    themes = analysis.themes_schema(sequences=sequences, speakers=[s.name for s in speakers])
    # The session's messages and speakers are read once; every 100th answer also goes the whole way,
    # reading them from the database, and must come out the same.
    messages = analysis.quotable_messages(focus_group=session)
    for i, _, data in answers(themes, seed="themes"):
        kept, counts = analysis.themes_check(data, messages=messages, speakers=speakers)
        assert all(len(t["title"]) <= analysis.TITLE_MAX and t["quotes"] for t in kept)
        if i % 100 == 0:
            assert analysis.themes_validate(data, focus_group=session) == (kept, counts)


def test_generated_reports_are_all_read(session):
    sections = ["Breakfast habits", "The subscription"]
    participants = analysis.session_participants(focus_group=session)
    report = analysis.report_schema(sections=sections, participant_ids=[p.persona_id for p in participants])
    for _, _, data in answers(report, seed="report"):
        final = analysis.report_finalise(data, sections=sections, participants=participants)
        assert [f["section"] for f in final["findings"]] == sections
        assert len(final["stances"]) == 3


def test_generated_emerging_themes_are_all_read(session):
    sequences = list(session.messages.filter(persona__isnull=False).values_list("sequence", flat=True))
    schema = live_themes.live_themes_schema(sequences=sequences)
    kept = 0
    for _, _, data in answers(schema, seed="live"):
        themes = live_themes.live_themes_clean(data, focus_group_id=session.pk)
        assert all(
            0 < len(t["title"]) <= live_themes.TITLE_MAX and len(t["note"]) <= live_themes.NOTE_MAX for t in themes
        )
        kept += bool(themes)
    assert kept >= N * 0.9  # only an answer whose every title came back blank has nothing to show


def test_generated_decisions_are_all_usable():
    labels = ["Priya Shah", "Tom Reed", "Ana Costa"]
    schema = autonomous_turns.decision_schema(labels)
    reason = AutonomousRun._meta.get_field("next_reason")
    for _, _, data in answers(schema, seed="decision"):
        assert data["next_speaker"] in labels and data["action"] in autonomous_turns.ACTIONS
        reason.clean(data["reason"], None)  # fits the column it is shown from
