"""llm.schemas: schemas read from model fields, what strict mode is sent, and answers fitted to limits."""

import json

import pytest
from django.core.validators import MaxValueValidator, MinValueValidator

from focusgroups.autonomous import turns as autonomous_turns
from focusgroups.guide import services as guides
from focusgroups.report import analysis
from llm.gateway import complete
from llm.schemas import STRICT_UNSUPPORTED, field_schema, schema_fit, text_fit, wire_schema
from personas.models import PROFILE_FIELDS, Persona
from personas.schemas import DETAIL_PROFILE_SCHEMA, MODIFIED_PROFILE_SCHEMA, basic_profiles_schema
from usage.models import UsageEvent, UsageStatus


def _profile_properties():
    basic = basic_profiles_schema(3)["properties"]["personas"]["items"]["properties"]
    detail = {**DETAIL_PROFILE_SCHEMA["properties"], **DETAIL_PROFILE_SCHEMA["properties"]["personality"]["properties"]}
    yield from basic.items()
    yield from detail.items()
    yield from MODIFIED_PROFILE_SCHEMA["properties"].items()


def test_every_persona_schema_property_carries_its_fields_limits():
    checked = set()
    for name, schema in _profile_properties():
        if name not in PROFILE_FIELDS:
            continue
        field = Persona._meta.get_field(name)
        checked.add(name)
        if field.choices:
            assert schema["enum"] == [value for value, _ in field.choices], name
        elif getattr(field, "max_length", None):
            assert schema["maxLength"] == field.max_length, name
        elif schema["type"] == "integer":
            lows = [v.limit_value for v in field.validators if isinstance(v, MinValueValidator)]
            highs = [v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)]
            assert max(lows) <= schema["minimum"] <= schema["maximum"] <= min(highs), name
    limited = {f.name for f in Persona._meta.fields if f.name in PROFILE_FIELDS and (f.choices or f.max_length)}
    assert limited <= checked
    assert basic_profiles_schema(1)["properties"]["personas"]["items"]["properties"]["gender"]["maxLength"] == 40
    assert (
        basic_profiles_schema(1)["properties"]["personas"]["items"]["properties"]["income_bracket"]["maxLength"] == 60
    )


def test_other_schemas_carry_the_limits_their_readers_keep():
    section = guides.GUIDE_SCHEMA["properties"]["sections"]["items"]
    assert guides.GUIDE_SCHEMA["properties"]["title"]["maxLength"] == guides.MAX_LENGTHS["guide"]
    assert section["properties"]["goal"]["maxLength"] == guides.MAX_LENGTHS["goal"]
    assert section["properties"]["questions"]["items"]["properties"]["probes"]["items"]["maxLength"] == 500
    theme = analysis.themes_schema(sequences=[1], speakers=["A"])["properties"]["themes"]["items"]
    assert theme["properties"]["title"]["maxLength"] == analysis.TITLE_MAX
    report = analysis.report_schema(sections=["S"], participant_ids=[1])["properties"]
    assert report["executive_summary"]["maxLength"] == analysis.SUMMARY_MAX
    decision = autonomous_turns.decision_schema(["A"])["properties"]
    assert decision["reason"]["maxLength"] == autonomous_turns.REASON_CHARS  # narrower than its column (300)


def test_a_product_rule_may_narrow_a_field_never_widen_it():
    assert field_schema(Persona, "age", minimum=18, maximum=90) == {"type": "integer", "minimum": 18, "maximum": 90}
    assert field_schema(Persona, "age") == {"type": "integer", "minimum": 13, "maximum": 110}
    with pytest.raises(ValueError, match="outside the field's range"):
        field_schema(Persona, "age", maximum=130)


def test_strict_mode_is_sent_lengths_in_words_and_everything_else_as_it_is():
    schema = basic_profiles_schema(2)
    wire = wire_schema(schema)
    text = json.dumps(wire)
    assert not any(f'"{key}"' in text for key in STRICT_UNSUPPORTED)
    profile = wire["properties"]["personas"]["items"]
    assert profile["properties"]["gender"] == {"type": "string", "description": "At most 40 characters."}
    assert profile["properties"]["grounded_in"]["description"].endswith("if any. At most 255 characters.")
    assert profile["properties"]["age"] == {"type": "integer", "minimum": 18, "maximum": 90}
    assert wire["properties"]["personas"]["minItems"] == 2 and profile["additionalProperties"] is False
    assert "maxLength" in schema["properties"]["personas"]["items"]["properties"]["gender"]  # not changed in place
    # A property that happens to be called like a keyword is still a property.
    odd = {"type": "object", "properties": {"maxLength": {"type": "integer"}}, "required": ["maxLength"]}
    assert wire_schema(odd) == odd


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Middle income, around £35,000 a year", 60, "Middle income, around £35,000 a year"),
        ("Upper-middle income, roughly £85,000–£95,000 a year household", 40, "Upper-middle income, roughly…"),
        ("Supercalifragilisticexpialidocious", 10, "Supercali…"),
        ("Non-binary; prefers to describe themselves as gender-fluid", 20, "Non-binary; prefers…"),
    ],
)
def test_text_is_cut_at_a_word_boundary_within_its_limit(text, limit, expected):
    assert text_fit(text, limit) == expected and len(expected) <= limit


def test_an_answer_is_fitted_to_its_schema():
    schema = DETAIL_PROFILE_SCHEMA
    answer = {
        "personality": {
            "openness": 140,
            "conscientiousness": -3,
            "extraversion": 50,
            "agreeableness": 0,
            "neuroticism": 100,
        },
        "tech_savviness": "Medium",
        "quote": "x" * 5000,  # a TextField: no limit, left as it is
    }
    fitted = schema_fit(answer, schema)
    assert fitted["personality"] == {
        "openness": 100,
        "conscientiousness": 0,
        "extraversion": 50,
        "agreeableness": 0,
        "neuroticism": 100,
    }
    assert fitted["tech_savviness"] == "medium" and fitted["quote"] == answer["quote"]
    assert schema_fit({"gender": "x" * 50}, basic_profiles_schema(1)["properties"]["personas"]["items"]) == {
        "gender": "x" * 39 + "…"
    }
    # Nothing is guessed: an unknown choice stays, for validation to report.
    assert schema_fit({"tech_savviness": "expert"}, schema)["tech_savviness"] == "expert"
    assert schema_fit([1, 2, 3], {"type": "array", "maxItems": 2, "items": {"type": "integer", "maximum": 1}}) == [1, 1]


@pytest.mark.django_db
def test_the_gateway_sends_the_wire_schema_and_keeps_an_answer_that_runs_over(fake_llm, owner):
    schema = basic_profiles_schema(1)
    profile = {
        "name": "Priya Shah",
        "age": 34,
        "gender": "Woman (she/her), though she rarely thinks about labels at all",
        "location": "Leeds",
        "occupation": "Nurse",
        "income_bracket": "Middle income: around £38,000 a year before tax, plus some overtime pay",
        "education": "BSc Nursing",
        "household": "Lives with her partner and two children",
        "grounded_in": None,
    }
    fake_llm.add_fault("invalid_output", content=json.dumps({"personas": [profile]}))
    result = complete(
        feature="persona_basic",
        messages=[{"role": "user", "content": "One person."}],
        schema=schema,
        schema_name="personas",
        user=owner,
    )
    [request] = fake_llm.requests  # kept at once: no retry, no second bill
    assert request.body["response_format"]["json_schema"]["schema"] == wire_schema(schema)
    [kept] = result.data["personas"]
    assert kept["gender"] == "Woman (she/her), though she rarely…"
    assert kept["income_bracket"] == "Middle income: around £38,000 a year before tax, plus some…"
    assert len(kept["gender"]) <= 40 and len(kept["income_bracket"]) <= 60
    assert UsageEvent.objects.get().status == UsageStatus.OK
