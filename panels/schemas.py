"""What a panel asks the model for. The sampled core (age, gender, education, income, where they live) is
never in a schema: the model cannot return it, so it cannot change it."""

from typing import Any

from llm.schemas import field_schema
from personas.models import Persona
from personas.schemas import PERSONALITY_SCHEMA

_STR_LIST = {"type": "array", "items": {"type": "string"}}


def _persona(name: str) -> dict:
    return field_schema(Persona, name)


_IDENTITY = {"name": _persona("name"), "occupation": _persona("occupation"), "household": _persona("household")}

# Stage 1 of a full profile: who the sampled person is, before the detailed profile (personas' own prompt).
SKETCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _IDENTITY,
    "required": list(_IDENTITY),
    "additionalProperties": False,
}

# A light profile: everything a survey respondent needs, in one quick call.
LIGHT_PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_IDENTITY,
        "personality": PERSONALITY_SCHEMA,
        "values": _STR_LIST,
        "interests": _STR_LIST,
        "frustrations": _STR_LIST,
        "buying_behaviour": _persona("buying_behaviour"),
        "media_habits": _persona("media_habits"),
        "tech_savviness": _persona("tech_savviness"),
        "backstory": _persona("backstory"),
        "speaking_style": _persona("speaking_style"),
        "quote": _persona("quote"),
    },
    "required": [
        *_IDENTITY,
        "personality",
        "values",
        "interests",
        "frustrations",
        "buying_behaviour",
        "media_habits",
        "tech_savviness",
        "backstory",
        "speaking_style",
        "quote",
    ],
    "additionalProperties": False,
}
