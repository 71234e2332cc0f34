"""JSON schemas for the structured outputs persona features ask the model for, and the repair of what comes back.

Strict mode: every property required, no extra properties; optional values
are nullable instead of missing. Every property that fills a Persona field is
built from that field (``llm.schemas.field_schema``): its length,
choices and range are the model's, so an answer the schema allows is one the
model can store. ``profile_repair`` then mends what a schema cannot rule out
(blank or padded text, a stray control character) instead of discarding a
profile that was paid for."""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from llm.schemas import field_schema, text_fit
from personas.models import BIG_FIVE, LIST_FIELDS, PROFILE_FIELDS, GroundingSource, Persona

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
# Adults only: narrower than the model's own 13-110.
AGE_MIN, AGE_MAX = 18, 90
UNNAMED = "Unnamed persona"


def _persona(name: str, **narrow) -> dict:
    return field_schema(Persona, name, **narrow)


def basic_profiles_schema(count: int) -> dict:
    profile = {
        "type": "object",
        "properties": {
            "name": _persona("name"),
            "age": _persona("age", minimum=AGE_MIN, maximum=AGE_MAX),
            "gender": _persona("gender"),
            "location": _persona("location"),
            "occupation": _persona("occupation"),
            "income_bracket": _persona("income_bracket"),
            "education": _persona("education"),
            "household": _persona("household"),
            "grounded_in": {
                **field_schema(GroundingSource, "filename"),
                "type": ["string", "null"],
                "description": "The reference source or segment label this person reflects, if any.",
            },
        },
        "required": [
            "name",
            "age",
            "gender",
            "location",
            "occupation",
            "income_bracket",
            "education",
            "household",
            "grounded_in",
        ],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"personas": {"type": "array", "minItems": count, "maxItems": count, "items": profile}},
        "required": ["personas"],
        "additionalProperties": False,
    }


# The Big Five, 0-100 each: what every profile the model writes carries.
PERSONALITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {trait: _persona(trait) for trait in BIG_FIVE},
    "required": list(BIG_FIVE),
    "additionalProperties": False,
}

DETAIL_PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "personality": PERSONALITY_SCHEMA,
        "values": _STR_LIST,
        "interests": _STR_LIST,
        "goals": _STR_LIST,
        "frustrations": _STR_LIST,
        "brand_affinities": _STR_LIST,
        "buying_behaviour": _persona("buying_behaviour"),
        "media_habits": _persona("media_habits"),
        "tech_savviness": _persona("tech_savviness"),
        "backstory": _persona("backstory"),
        "speaking_style": _persona("speaking_style"),
        "quote": _persona("quote"),
    },
    "required": [
        "personality",
        "values",
        "interests",
        "goals",
        "frustrations",
        "brand_affinities",
        "buying_behaviour",
        "media_habits",
        "tech_savviness",
        "backstory",
        "speaking_style",
        "quote",
    ],
    "additionalProperties": False,
}

_BASIC_FOR_MODIFY = basic_profiles_schema(1)["properties"]["personas"]["items"]["properties"]

MODIFIED_PROFILE_SCHEMA = {
    "type": "object",
    "properties": {
        **{key: value for key, value in _BASIC_FOR_MODIFY.items() if key != "grounded_in"},
        **DETAIL_PROFILE_SCHEMA["properties"],
    },
    "required": [key for key in _BASIC_FOR_MODIFY if key != "grounded_in"] + DETAIL_PROFILE_SCHEMA["required"],
    "additionalProperties": False,
}


def detail_to_fields(detail: dict) -> dict:
    """Flatten a detailed profile (personality nested) into Persona fields."""
    fields = {key: value for key, value in detail.items() if key != "personality"}
    fields.update(detail.get("personality") or {})
    return fields


# --- repairing an answer -------------------------------------------------------------------

# Control characters other than tab and newline: Postgres refuses NUL in text, and none of them reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(value) -> str:
    return _CONTROL.sub("", value if isinstance(value, str) else str(value)).strip()


def _number(field, value, fallback):
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return fallback
    for validator in field.validators:
        if not isinstance(validator, MinValueValidator | MaxValueValidator):
            continue
        try:
            validator(number)
        except ValidationError:
            limit = validator.limit_value
            number = limit() if callable(limit) else limit
    return number


def _choice(field, value: str, fallback):
    choices = {str(key).casefold(): key for key, _ in field.flatchoices}
    wanted = value.casefold()
    if wanted in choices:
        return choices[wanted]
    # "medium-high", "Fairly high": the choice named in it, else what the persona had, else blank
    named = [key for key in choices if key and re.search(rf"\b{re.escape(key)}\b", wanted)]
    if len(named) == 1:
        return choices[named[0]]
    return fallback if fallback is not None else ("" if field.blank else value)


def profile_repair(fields: dict, *, current: dict | None = None) -> dict:
    """Persona fields from an AI answer, mended so that a model-valid value always comes out: text
    stripped of control characters and surrounding space and cut at a word boundary to its column,
    a choice matched to the nearest valid one, numbers clamped to their range, blank list items dropped.
    A required value left blank takes ``current``'s (the persona being changed), else a placeholder.
    Only profile fields are kept."""
    current = current or {}
    repaired: dict = {}
    for name in PROFILE_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        field = Persona._meta.get_field(name)
        if not isinstance(field, models.Field):
            raise TypeError(f"Persona.{name}: a profile field must be a column, not a {field.__class__.__name__}")
        if name in LIST_FIELDS:
            items = value if isinstance(value, list) else [value]
            texts = (_text(item) for item in items if item is not None)
            repaired[name] = [text for text in texts if text]
        elif name in BIG_FIVE or name == "age":
            fallback = current.get(name) if name in current else (None if field.null else AGE_MIN)
            repaired[name] = None if value is None and field.null else _number(field, value, fallback)
        else:
            text = _text("" if value is None else value)
            if field.choices:
                text = _choice(field, text, current.get(name))
            if not text and not field.blank:
                text = current.get(name) or UNNAMED
            repaired[name] = text_fit(text, field.max_length) if field.max_length else text
    return repaired
