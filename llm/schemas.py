"""Structured-output schemas: their limits come from the model fields they fill, and answers are fitted to them.

* ``field_schema(Model, "field")`` is the JSON schema of one Django model field, read from ``_meta``
  (``max_length`` -> ``maxLength``, ``choices`` -> ``enum``, min/max validators -> ``minimum``/``maximum``),
  so a schema and the column it fills cannot drift apart. A product rule may narrow it, never widen it.
* ``wire_schema(schema)`` is what the provider is sent. OpenAI's strict structured outputs take
  ``minimum``/``maximum``/``enum``/``minItems``/``maxItems`` but not string lengths (``minLength``/
  ``maxLength``) or a few rarer keywords: those move into the property's description, in words.
* ``schema_fit(value, schema)`` repairs an answer where strict mode cannot hold the model to the schema:
  text over its ``maxLength`` is cut at a word boundary, a number outside its bounds is clamped, a list
  over ``maxItems`` is shortened, a near-miss of an ``enum`` becomes the choice it meant. The gateway
  fits every answer before validating it, so a billed answer is not thrown away for being a little long.
"""

import copy
import difflib
from typing import Any

from django.core import validators
from django.db import models

__all__ = ["STRICT_UNSUPPORTED", "field_schema", "schema_fit", "text_fit", "wire_schema"]

# Keywords OpenAI's strict mode does not take (its Structured Outputs guide lists the supported ones; the
# rest are refused or ignored). The gateway checks them itself, after ``schema_fit``.
STRICT_UNSUPPORTED = (
    "minLength",
    "maxLength",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
)
# Keywords whose value is a map of names to schemas, and those whose value is one schema or a list of them.
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "if", "then", "else")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
ELLIPSIS = "…"


# --- from model fields ---------------------------------------------------------------------


def _bounds(field: models.Field) -> tuple[int | float | None, int | float | None]:
    low = high = None
    for validator in field.validators:
        # Only these two carry a bound; any other validator (a plain function too) says nothing here.
        if not isinstance(validator, validators.MinValueValidator | validators.MaxValueValidator):
            continue
        limit = validator.limit_value
        limit = limit() if callable(limit) else limit
        if isinstance(validator, validators.MinValueValidator):
            low = limit if low is None else max(low, limit)
        else:
            high = limit if high is None else min(high, limit)
    return low, high


def field_schema(
    model: type[models.Model],
    name: str,
    *,
    description: str = "",
    minimum: int | float | None = None,
    maximum: int | float | None = None,
) -> dict:
    """The JSON schema of ``model.name``. ``minimum``/``maximum`` narrow the field's own range (a product
    rule such as "adults only"); a bound outside the field's range is a programming error."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name}: no JSON schema for a {field.__class__.__name__}")
    schema: dict[str, Any]
    if field.choices:
        schema = {"type": "string", "enum": [str(value) for value, _ in field.flatchoices if value != ""]}
    elif isinstance(field, models.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, models.IntegerField | models.FloatField):
        schema = {"type": "integer" if isinstance(field, models.IntegerField) else "number"}
        low, high = _bounds(field)
        for key, own, wanted, narrower in (
            ("minimum", low, minimum, max),
            ("maximum", high, maximum, min),
        ):
            if wanted is not None and own is not None and narrower(own, wanted) != wanted:
                raise ValueError(f"{model.__name__}.{name}: {key} {wanted} is outside the field's range")
            value = wanted if wanted is not None else own
            if value is not None:
                schema[key] = value
    elif isinstance(field, models.CharField | models.TextField):
        schema = {"type": "string"}
        if field.max_length:
            schema["maxLength"] = field.max_length
    else:
        raise TypeError(f"{model.__name__}.{name}: no JSON schema for a {field.__class__.__name__}")
    if description:
        schema["description"] = description
    return schema


# --- what the provider is sent -------------------------------------------------------------


def _limits_in_words(removed: dict) -> str:
    low, high = removed.get("minLength"), removed.get("maxLength")
    if high is not None and low:
        return f"{low} to {high} characters."
    if high is not None:
        return f"At most {high} characters."
    if low:
        return f"At least {low} characters."
    return ""


def _wire(node: Any) -> Any:
    if isinstance(node, list):
        return [_wire(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    removed: dict = {}
    for key, value in node.items():
        if key in STRICT_UNSUPPORTED:
            removed[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _wire(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES or key in _SCHEMA_LISTS:
            out[key] = _wire(value)
        else:
            out[key] = copy.deepcopy(value)
    words = _limits_in_words(removed)
    if words:
        out["description"] = f"{out['description'].rstrip()} {words}" if out.get("description") else words
    return out


def wire_schema(schema: dict) -> dict:
    """``schema`` as strict mode takes it: unsupported keywords removed, length limits said in words."""
    return _wire(schema)


# --- fitting an answer ---------------------------------------------------------------------


def text_fit(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at the last word boundary that leaves at least half of
    it, with an ellipsis to show it was cut; mid-word only when there is no such boundary."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    room = text[: limit - 1]
    if not text[limit - 1].isspace():  # else ``room`` already ends with a whole word
        space = max(room.rfind(" "), room.rfind("\n"))
        if space >= limit // 2:
            room = room[:space]
    room = room.rstrip(" \t\n,;:-–—(/")
    return (room + ELLIPSIS) if room else text[:limit]


def _closest_choice(value: str, choices: list) -> Any:
    strings = [choice for choice in choices if isinstance(choice, str)]
    wanted = value.strip().casefold()
    for choice in strings:
        if choice.casefold() == wanted:
            return choice
    found = difflib.get_close_matches(wanted, [c.casefold() for c in strings], n=1, cutoff=0.6)
    if found:
        return next(choice for choice in strings if choice.casefold() == found[0])
    return value


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def schema_fit(value: Any, schema: Any) -> Any:
    """A copy of ``value`` repaired where it breaks a limit of ``schema`` that can be repaired without
    guessing (see the module docstring). Anything else is left for validation to report."""
    if not isinstance(schema, dict):
        return value
    kind = _json_type(value)
    if "enum" in schema and kind == "string" and value not in schema["enum"]:
        return _closest_choice(value, schema["enum"])
    if kind == "string" and isinstance(schema.get("maxLength"), int):
        return text_fit(value, schema["maxLength"])
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int | float) and value < low:
            return low
        if isinstance(high, int | float) and value > high:
            return high
        return value
    if kind == "array":
        limit = schema.get("maxItems")
        items = value[:limit] if isinstance(limit, int) else value
        return [schema_fit(item, schema.get("items")) for item in items]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: schema_fit(item, properties.get(key)) for key, item in value.items()}
    for key in ("anyOf", "oneOf"):
        # The first branch of the value's own type: enough for the nullable and either-or shapes used here.
        for branch in schema.get(key) or []:
            branch_type = branch.get("type") if isinstance(branch, dict) else None
            if branch_type == kind or (kind == "integer" and branch_type == "number"):
                return schema_fit(value, branch)
    return value
