"""fake_instance: every value validates against its schema, is deterministic per seed, and reads like a person."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from llm.schema_faker import fake_instance, fake_reply

SEEDS = range(25)

PERSONA_LIST = {
    "type": "object",
    "properties": {
        "personas": {
            "type": "array",
            "minItems": 3,
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer", "minimum": 18, "maximum": 90},
                    "gender": {"type": "string", "enum": ["male", "female", "non-binary"]},
                    "location": {"type": "string"},
                    "occupation": {"type": "string"},
                    "income_band": {"type": "string", "enum": ["low", "middle", "high"]},
                    "bio": {"type": "string"},
                    "quote": {"type": "string"},
                    "interests": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                    "pain_points": {"type": "array", "items": {"type": "string"}},
                },
                "required": [
                    "name",
                    "age",
                    "gender",
                    "location",
                    "occupation",
                    "income_band",
                    "bio",
                    "quote",
                    "interests",
                    "pain_points",
                ],
                "additionalProperties": False,
            },
        }
    },
    "required": ["personas"],
    "additionalProperties": False,
}

DISCUSSION_GUIDE = {
    "$defs": {
        "question": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 10},
                "probes": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
                "minutes": {"type": "integer", "minimum": 1, "maximum": 15},
            },
            "required": ["text", "probes", "minutes"],
            "additionalProperties": False,
        },
        "section": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 60},
                "objective": {"type": "string"},
                "questions": {"type": "array", "items": {"$ref": "#/$defs/question"}, "minItems": 2},
            },
            "required": ["title", "objective", "questions"],
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "study_name": {"type": "string"},
        "sections": {"type": "array", "items": {"$ref": "#/$defs/section"}, "minItems": 3, "maxItems": 5},
        "total_minutes": {"type": "integer", "minimum": 30, "maximum": 120, "multipleOf": 5},
    },
    "required": ["study_name", "sections", "total_minutes"],
    "additionalProperties": False,
}

NULLABLE = {
    "type": "object",
    "properties": {
        "nickname": {"type": ["string", "null"]},
        "children": {"type": ["integer", "null"], "minimum": 0, "maximum": 4},
        "employer": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "summary": {"anyOf": [{"type": "string", "maxLength": 80}, {"type": "null"}]},
    },
    "required": ["nickname", "children", "employer", "summary"],
    "additionalProperties": False,
}

ANY_OF = {
    "definitions": {
        "text_answer": {
            "type": "object",
            "properties": {"kind": {"const": "text"}, "answer": {"type": "string"}},
            "required": ["kind", "answer"],
            "additionalProperties": False,
        },
        "rating_answer": {
            "type": "object",
            "properties": {"kind": {"const": "rating"}, "rating": {"type": "integer", "minimum": 1, "maximum": 5}},
            "required": ["kind", "rating"],
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "answers": {
            "type": "array",
            "items": {"anyOf": [{"$ref": "#/definitions/text_answer"}, {"$ref": "#/definitions/rating_answer"}]},
        },
        "choice": {"oneOf": [{"type": "integer", "minimum": 10}, {"type": "string", "enum": ["a", "b"]}]},
    },
    "required": ["answers", "choice"],
    "additionalProperties": False,
}

CONSTRAINTS = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
        "short": {"type": "string", "minLength": 3, "maxLength": 12},
        "long": {"type": "string", "minLength": 200},
        "when": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "contact": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "step": {"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.5},
        "price": {"type": "number", "minimum": 1, "maximum": 2, "multipleOf": 0.01},
        "big": {"type": "integer", "minimum": 1000},
        "negative": {"type": "integer", "maximum": -5},
        "flag": {"type": "boolean"},
        "nothing": {"type": "null"},
        "fixed": {"const": {"version": 2}},
        "level": {"enum": [1, "two", None]},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y", "z"]}, "uniqueItems": True},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
        "anything": {},
    },
    "required": ["code", "short", "long", "when", "at", "contact", "id", "ratio", "step", "price", "big"],
    "additionalProperties": False,
}

TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["label", "children"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}

ALL_SCHEMAS = {
    "persona_list": PERSONA_LIST,
    "discussion_guide": DISCUSSION_GUIDE,
    "nullable": NULLABLE,
    "any_of": ANY_OF,
    "constraints": CONSTRAINTS,
    "tree": TREE,
}

NAME = re.compile(r"^[A-ZÀ-Ý][\w'-]+ [A-ZÀ-Ý][\w'-]+$")
FIRST_PERSON = re.compile(r"\b(I|I'm|I'd|I've|me|my)\b")


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_every_value_validates(name):
    schema = ALL_SCHEMAS[name]
    checker = jsonschema.FormatChecker()
    for seed in SEEDS:
        jsonschema.validate(fake_instance(schema, seed=seed), schema, format_checker=checker)


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_same_seed_same_value_and_different_seeds_differ(name):
    schema = ALL_SCHEMAS[name]
    assert fake_instance(schema, seed=7) == fake_instance(schema, seed=7)
    assert fake_instance(schema, seed="req-abc") == fake_instance(schema, seed="req-abc")
    values = {json.dumps(fake_instance(schema, seed=seed), sort_keys=True) for seed in range(6)}
    assert len(values) >= 5


def test_personas_read_like_people():
    for seed in SEEDS:
        personas = fake_instance(PERSONA_LIST, seed=seed)["personas"]
        names = [p["name"] for p in personas]
        assert len(set(names)) == len(names), names
        for persona in personas:
            assert NAME.match(persona["name"]), persona["name"]
            assert 18 <= persona["age"] <= 80  # the person's plausible range, inside the schema's 18-90
            assert re.match(r"^[A-Z][\w .'-]+, [A-Z][\w .'-]+$", persona["location"]), persona["location"]
            assert persona["occupation"][0].isupper() and len(persona["occupation"].split()) <= 4
            assert FIRST_PERSON.search(persona["quote"]) and persona["quote"][-1] in ".!?", persona["quote"]
            # the bio is about this person: their first name, age, job and city
            first = persona["name"].split()[0]
            assert persona["bio"].startswith(f"{first} is ")
            assert f"{persona['age']}-year-old" in persona["bio"]
            assert persona["occupation"].lower() in persona["bio"]
            assert persona["location"].split(",")[0] in persona["bio"]
            pronoun = {"female": "She ", "male": "He ", "non-binary": "They "}[persona["gender"]]
            assert pronoun in persona["bio"], (persona["gender"], persona["bio"])
            if persona["occupation"].startswith("Retired"):
                assert persona["age"] >= 60
            if persona["occupation"] == "University student":
                assert persona["age"] <= 25


def test_name_follows_the_gender():
    """A persona's first name belongs to the gender the schema gave it."""
    from llm import schema_faker

    female = {n for loc in schema_faker._LOCALES for n in loc["female"]}
    male = {n for loc in schema_faker._LOCALES for n in loc["male"]}
    for seed in SEEDS:
        for persona in fake_instance(PERSONA_LIST, seed=seed)["personas"]:
            first = persona["name"].split()[0]
            if persona["gender"] == "female":
                assert first in female, persona
            elif persona["gender"] == "male":
                assert first in male, persona


def test_discussion_guide_reads_like_one():
    guide = fake_instance(DISCUSSION_GUIDE, seed=3)
    assert 3 <= len(guide["sections"]) <= 5
    assert guide["total_minutes"] % 5 == 0
    for section in guide["sections"]:
        assert section["title"][0].isupper() and not section["title"].endswith("?")
        assert section["objective"].endswith(".")
        for question in section["questions"]:
            assert question["text"].endswith("?"), question["text"]  # questions[].text is a question
            assert all(probe.endswith("?") for probe in question["probes"])


def test_nullable_fields_are_sometimes_null_and_mostly_not():
    values = [fake_instance(NULLABLE, seed=seed) for seed in range(60)]
    for key in NULLABLE["properties"]:
        nulls = sum(v[key] is None for v in values)
        assert 0 < nulls < 30, (key, nulls)


def test_any_of_picks_valid_branches_and_const():
    value = fake_instance(ANY_OF, seed=1)
    assert value["answers"]
    assert all(answer["kind"] in ("text", "rating") for answer in value["answers"])
    assert value["choice"] == 10 or isinstance(value["choice"], int) or value["choice"] in ("a", "b")


def test_recursive_schema_terminates():
    for seed in SEEDS:
        value = fake_instance(TREE, seed=seed)
        depth, node = 0, value
        while node["children"]:
            node, depth = node["children"][0], depth + 1
        assert depth <= 10


def test_top_level_scalars_use_the_hint():
    assert NAME.match(fake_instance({"type": "string"}, seed=1, hint="name"))
    assert fake_instance({"type": "string"}, seed=1, hint="question").endswith("?")
    assert 18 <= fake_instance({"type": "integer"}, seed=1, hint="age") <= 80
    assert fake_instance({"enum": ["yes", "no"]}, seed=1) in ("yes", "no")
    assert fake_instance({"const": 42}, seed=1) == 42
    assert fake_instance({"type": "boolean"}, seed=1) in (True, False)
    assert fake_instance({"type": "null"}, seed=1) is None


def test_age_respects_bounds_outside_the_usual_range():
    teen = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 13, "maximum": 17}}}
    senior = {"type": "object", "properties": {"age": {"type": "integer", "exclusiveMinimum": 85}}}
    for seed in SEEDS:
        assert 13 <= fake_instance(teen, seed=seed)["age"] <= 17
        assert fake_instance(senior, seed=seed)["age"] > 85


def test_deterministic_across_processes():
    """String seeds and word banks do not depend on PYTHONHASHSEED."""
    code = (
        "import json; from llm.schema_faker import fake_instance; "
        f"print(json.dumps(fake_instance(json.loads({json.dumps(json.dumps(PERSONA_LIST))}), seed='abc')))"
    )
    root = Path(__file__).resolve().parents[2]
    # this process hashes strings with a random seed; the child with a fixed, different one
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout) == fake_instance(PERSONA_LIST, seed="abc")


def test_fake_reply_is_a_first_person_answer_to_the_prompt():
    reply = fake_reply(seed=5, prompt="How do you feel about grocery delivery subscriptions?", sentences=4)
    assert reply == fake_reply(seed=5, prompt="How do you feel about grocery delivery subscriptions?", sentences=4)
    assert "grocery delivery subscriptions" in reply.lower()
    assert FIRST_PERSON.search(reply)
    assert len(re.findall(r"[.!?](\s|$)", reply)) >= 4
    assert fake_reply(seed=6, prompt="x") != fake_reply(seed=7, prompt="x")


LIMITED = {
    "type": "object",
    "properties": {
        "gender": {"type": "string", "maxLength": 40},
        "bio": {"type": "string"},
        "age": {"type": "integer", "minimum": 18, "maximum": 90},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 12}},
        "kind": {"type": "string", "enum": ["a", "b"]},
    },
    "required": ["gender", "bio", "age", "score", "tags", "kind"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", SEEDS)
def test_fill_puts_every_value_at_its_limit(seed):
    value = fake_instance(LIMITED, seed=seed, fill=1.0)
    jsonschema.validate(value, LIMITED)
    assert len(value["gender"]) == 40 and len(value["bio"]) >= 400
    assert value["age"] in (18, 90) and value["score"] in (0, 1)
    assert len(value["tags"]) == 5 and all(len(tag) == 12 for tag in value["tags"])


def test_ragged_strings_are_blank_spaces_or_padded_and_still_valid():
    values = [fake_instance(LIMITED, seed=seed, ragged=1.0) for seed in range(60)]
    for value in values:
        jsonschema.validate(value, LIMITED)
    genders = [value["gender"] for value in values]
    assert "" in genders and any(g and not g.strip() for g in genders)
    assert any(g.strip() and g != g.strip() for g in genders)
    assert all(value["kind"] in ("a", "b") for value in values)  # choices stay choices


def test_edge_cases_off_leave_values_as_they_were():
    for seed in SEEDS:
        assert fake_instance(PERSONA_LIST, seed=seed) == fake_instance(PERSONA_LIST, seed=seed, fill=0, ragged=0)
        partly = fake_instance(LIMITED, seed=seed, fill=0.3, ragged=0.3)
        jsonschema.validate(partly, LIMITED)


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_edge_cases_still_validate(name):
    schema = ALL_SCHEMAS[name]
    checker = jsonschema.FormatChecker()
    for seed in SEEDS:
        for fill, ragged in ((1.0, 0.0), (0.4, 0.4)):
            value = fake_instance(schema, seed=seed, fill=fill, ragged=ragged)
            jsonschema.validate(value, schema, format_checker=checker)
