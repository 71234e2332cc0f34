"""JSON schemas for the structured outputs persona features ask the model for.

Strict mode: every property required, no extra properties; optional values
are nullable instead of missing."""

from personas.models import BIG_FIVE

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def basic_profiles_schema(count: int) -> dict:
    profile = {
        "type": "object",
        "properties": {
            "name": _STR,
            "age": {"type": "integer", "minimum": 18, "maximum": 90},
            "gender": _STR,
            "location": _STR,
            "occupation": _STR,
            "income_bracket": _STR,
            "education": _STR,
            "household": _STR,
            "grounded_in": {
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


DETAIL_PROFILE_SCHEMA = {
    "type": "object",
    "properties": {
        "personality": {
            "type": "object",
            "properties": {trait: {"type": "integer", "minimum": 0, "maximum": 100} for trait in BIG_FIVE},
            "required": list(BIG_FIVE),
            "additionalProperties": False,
        },
        "values": _STR_LIST,
        "interests": _STR_LIST,
        "goals": _STR_LIST,
        "frustrations": _STR_LIST,
        "brand_affinities": _STR_LIST,
        "buying_behaviour": _STR,
        "media_habits": _STR,
        "tech_savviness": {"type": "string", "enum": ["low", "medium", "high"]},
        "backstory": _STR,
        "speaking_style": _STR,
        "quote": _STR,
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
