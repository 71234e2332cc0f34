"""No paid-for profile is discarded for its length: generation against the fake LLM answering at (and past) the
limits of every field saves every profile, and what cannot be stored says which field."""

import json

import pytest

from billing.selectors import credits_balance, ledger_is_consistent
from billing.services import credits_grant
from cohorta.errors import ApplicationError
from cohorta.jobs.models import JobState
from llm.schema_faker import fake_instance
from personas import generation
from personas.models import BASIC_FIELDS, Persona
from personas.schemas import DETAIL_PROFILE_SCHEMA, MODIFIED_PROFILE_SCHEMA, basic_profiles_schema
from personas.services import persona_create
from usage.models import UsageEvent, UsageStatus

pytestmark = pytest.mark.django_db(transaction=True)

BRIEF = "UK parents of young children who cook on weeknights and are curious about meal kits."
COUNT = 12
LIMITED = [name for name in BASIC_FIELDS if getattr(Persona._meta.get_field(name), "max_length", None)]


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    return owner


def _stretched(schema, factor: int):
    """``schema`` with every maxLength multiplied: what a model may write, strict mode not holding it to lengths."""
    if isinstance(schema, dict):
        return {
            key: value * factor if key == "maxLength" else _stretched(value, factor) for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_stretched(item, factor) for item in schema]
    return schema


def _answer(schema, seed: str, factor: int = 1) -> str:
    """The fake LLM's answer: every string, list and number at its limit (``factor`` times the length limit)."""
    return json.dumps(fake_instance(_stretched(schema, factor), seed=seed, fill=1.0), ensure_ascii=False)


def _generate(funded, fake_llm, factor: int):
    fake_llm.add_fault("invalid_output", content=_answer(basic_profiles_schema(COUNT), "stage1", factor))
    for i in range(COUNT):
        fake_llm.add_fault("invalid_output", content=_answer(DETAIL_PROFILE_SCHEMA, f"stage2:{i}", factor))
    brief = generation.brief_start(owner=funded, description=BRIEF, count=COUNT)
    brief.refresh_from_db()
    return brief


def test_answers_at_every_limit_save_every_profile(funded, fake_llm):
    brief = _generate(funded, fake_llm, factor=1)
    job = brief.job
    assert job.state == JobState.DONE, job.error
    assert job.result["failed"] == [] and len(job.result["created"]) == COUNT
    personas = list(Persona.objects.filter(brief=brief))
    assert len(personas) == COUNT
    # Each text was as long as its column allows (less any space at its ends), and was stored whole.
    for persona in personas:
        for name in LIMITED:
            if name != "name":  # names may be made unique
                assert len(getattr(persona, name)) >= Persona._meta.get_field(name).max_length - 1
    assert len(fake_llm.requests) == COUNT + 1  # no answer was rejected and asked for again
    assert not UsageEvent.objects.filter(job=job).exclude(status=UsageStatus.OK).exists()
    assert credits_balance(user=funded) == 100 - 2 * COUNT and ledger_is_consistent(user=funded)


def test_answers_past_the_limits_are_cut_at_a_word_and_every_profile_is_saved(funded, fake_llm):
    """The incident: the model wrote a longer gender or income bracket than the column holds, and 9 of 12
    billed profiles were discarded as invalid."""
    brief = _generate(funded, fake_llm, factor=3)
    job = brief.job
    assert job.state == JobState.DONE, job.error
    assert job.result["failed"] == [] and Persona.objects.filter(brief=brief).count() == COUNT
    answer = json.loads(fake_llm.responses[0].content)["personas"]
    for persona in Persona.objects.filter(brief=brief):
        for name in ("gender", "income_bracket", "household"):
            value, limit = getattr(persona, name), Persona._meta.get_field(name).max_length
            assert len(value) <= limit and value.endswith("…")
            # a cut of what the model wrote, at a word
            assert any(profile[name].startswith(value[:-1].rstrip()) for profile in answer)
    assert len(fake_llm.requests) == COUNT + 1
    assert not UsageEvent.objects.filter(job=job).exclude(status=UsageStatus.OK).exists()
    assert credits_balance(user=funded) == 100 - 2 * COUNT


def test_an_ai_change_past_the_limits_is_saved_and_keeps_the_name_when_it_comes_back_blank(funded, fake_llm):
    persona = persona_create(owner=funded, data={"name": "Tom Reed", "age": 58, "gender": "Male"})
    answer = json.loads(_answer(MODIFIED_PROFILE_SCHEMA, "modify", factor=3))
    answer["name"] = "   "
    answer["tech_savviness"] = "High"
    fake_llm.add_fault("invalid_output", content=json.dumps(answer))
    job = generation.persona_modify_start(persona=persona, instruction="make him an early adopter")
    job.refresh_from_db()
    persona.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    assert persona.version == 2 and persona.name == "Tom Reed" and persona.tech_savviness == "high"
    assert len(persona.income_bracket) <= 60 and persona.income_bracket.endswith("…")


def test_a_value_that_cannot_be_stored_names_its_field(funded):
    with pytest.raises(ApplicationError) as info:
        persona_create(owner=funded, data={"name": "Priya Shah", "age": 34, "income_bracket": "x" * 61})
    assert info.value.message.startswith("Profile field 'income_bracket' is invalid: ")
    assert "at most 60 characters" in info.value.message
    assert set(info.value.extra["fields"]) == {"income_bracket"}
