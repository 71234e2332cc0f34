"""Between sampled demographic cores and persona fields.

``persona_fields`` turns a core ({dimension key: category}) into the persona fields it fixes (age drawn
inside its band, gender, education, income bracket, location); ``core_mismatches`` is how a job checks
that the model changed none of them. ``persona_core`` goes the other way for any persona (no sampled
core): it reads the persona's fields into the population's categories, so any folder has a composition.
"""

from __future__ import annotations

import random
import re

from surveyweights.census.us_census import US_REGIONS_MAP

from panels.population import Dimension, Population, clean_text

CORE_FIELDS = ("age", "gender", "education", "income_bracket", "location")
FIELD_LIMITS = {"gender": 40, "education": 120, "income_bracket": 60, "location": 120}
AGE_MIN, AGE_MAX = 13, 110
AGE_UNKNOWN = (25, 64)  # a core without an age band
AGE_OPEN_TOP = 85  # "65+" is drawn from 65 to 85

US_STATE_ABBREVIATIONS = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico", "GU": "Guam", "VI": "Virgin Islands",
}  # fmt: skip


def _state_regions() -> dict[str, str]:
    """State (and territory) name -> surveyweights' region; its "District of Columbia (DC)" also as
    "District of Columbia", "Washington, DC" and "Washington DC"."""
    regions = {state.replace(" (DC)", ""): region for region, states in US_REGIONS_MAP.items() for state in states}
    regions["Washington DC"] = regions["Washington, DC"] = regions["District of Columbia"]
    return regions


STATE_REGIONS = _state_regions()
# Longest first, so that "West Virginia" is found before "Virginia" and "Washington, DC" before "Washington".
_STATE_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(name) for name in sorted(STATE_REGIONS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_ABBREVIATION_PATTERN = re.compile(r"(?:^|[\s,(])([A-Z]{2})(?=$|[\s,.;)])")

_GENDER_WORDS = {
    "female": ("female", "woman", "women", "f", "w", "girl", "lady", "feminine"),
    "male": ("male", "man", "men", "m", "boy", "masculine"),
    "other": (
        "non-binary", "nonbinary", "non binary", "nb", "enby", "genderqueer", "gender queer", "agender",
        "genderfluid", "gender fluid", "gender non-conforming", "two-spirit", "other", "another gender",
        "prefer to self-describe", "x",
    ),
}  # fmt: skip
_GENDER_CATEGORY_WORDS = {
    "female": ("female", "woman", "women", "females"),
    "male": ("male", "man", "men", "males"),
    "other": ("other", "non-binary", "nonbinary", "non binary", "other/non-binary", "non-binary/other", "another"),
}
# Free-text education -> the bundled US categories (only used when the population has that category).
_EDUCATION_RULES = (
    (
        "Less than high school",
        r"less than high school|no high school|some high school|did not (finish|complete) high school|"
        r"didn't (finish|complete) high school|dropped out|no diploma|no formal|primary school|elementary",
    ),
    (
        "Completed graduate school",
        r"master|\bmba\b|ph\.?\s?d|doctor|\bdphil\b|graduate degree|graduate school|postgrad|post-grad|"
        r"law degree|\bj\.?d\.?\b|\bm\.?d\.?\b|\bm\.?sc?\b|\bm\.?a\.?\b|\bmed\b",
    ),
    (
        "Graduated from college",
        r"bachelor|college degree|university degree|college graduate|university graduate|graduated from college|"
        r"\bb\.?a\.?\b|\bb\.?sc?\b|\bbfa\b|four-year degree|4-year degree|undergraduate degree",
    ),
    (
        "Some college, no degree",
        r"some college|associate|community college|vocational|trade school|some university|technical college|"
        r"college \(no degree\)|no degree",
    ),
    ("Graduated from high school", r"high school|\bged\b|secondary school|diploma"),
)
_URBAN_RULES = (
    ("suburban", r"suburb"),
    ("rural", r"rural|village|countryside|farm|ranch|small town|the country\b"),
    # Not "city" alone: Kansas City, Carson City and Dodge City are names, not a way of living.
    ("urban", r"urban|downtown|metropolitan|metro area|inner[- ]city|big city|the city|city cent(?:er|re)"),
)
_AMOUNT = r"(\d[\d,]*(?:\.\d+)?)\s*(k|thousand|m|million)?\b"


def fit(text: str, limit: int) -> str:
    """``text`` cleaned and cut to ``limit`` characters: what the persona field stores unchanged."""
    text = clean_text(text)
    return text if len(text) <= limit else text[:limit].rstrip()


def age_bounds(category: str) -> tuple[int, int | None] | None:
    """``"18-24"`` -> (18, 24), ``"65+"`` -> (65, None), ``"Under 25"`` -> (18, 24); None if not an age."""
    text = clean_text(category).lower().replace("–", "-").replace("—", "-")
    match = re.search(r"(\d+)\s*(?:-|to)\s*(\d+)", text)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        return (min(low, high), max(low, high))
    match = re.search(r"(\d+)\s*(?:\+|plus|and over|and older|or older|or over|years and over)", text)
    if match:
        return (int(match.group(1)), None)
    match = re.search(r"(?:under|less than|below|younger than)\s*(\d+)", text)
    if match:
        top = int(match.group(1)) - 1
        return (18 if top >= 18 else AGE_MIN, top)
    match = re.fullmatch(r"\s*(\d+)\s*(?:years?)?\s*", text)
    if match:
        return (int(match.group(1)), int(match.group(1)))
    return None


def persona_fields(core: dict[str, str], population: Population, *, rng: random.Random) -> dict:
    """The persona fields a core fixes. ``age`` always (an int drawn uniformly inside the core's band with
    ``rng``, 25-64 without one); ``gender`` ("Other" -> "Non-binary"), ``education``, ``income_bracket``
    and ``location`` ("Suburban, Midwest (US)") when the core has the dimensions behind them. Other
    dimensions stay in the core only. The same core and ``rng`` state give the same fields."""
    bounds = age_bounds(core["age"]) if core.get("age") else None
    low, high = bounds if bounds else AGE_UNKNOWN
    if high is None:
        high = max(low, AGE_OPEN_TOP) if low < AGE_OPEN_TOP else low + 10
    low, high = max(AGE_MIN, min(low, AGE_MAX)), max(AGE_MIN, min(high, AGE_MAX))
    fields: dict = {"age": rng.randint(low, high)}
    if core.get("gender"):
        gender = "Non-binary" if core["gender"].strip().casefold() == "other" else core["gender"]
        fields["gender"] = fit(gender, FIELD_LIMITS["gender"])
    if core.get("education"):
        fields["education"] = fit(core["education"], FIELD_LIMITS["education"])
    if core.get("income"):
        fields["income_bracket"] = fit(core["income"], FIELD_LIMITS["income_bracket"])
    places = [core[key] for key in ("urban_rural", "region") if core.get(key)]
    if places:
        location = ", ".join(clean_text(place) for place in places)
        country = clean_text(population.country)
        if country and len(location) + len(country) + 3 <= FIELD_LIMITS["location"]:
            location = f"{location} ({country})"
        fields["location"] = fit(location, FIELD_LIMITS["location"])
    return fields


def core_record(core: dict[str, str], population: Population) -> list[dict]:
    """The core as stored on a persona and shown on its profile: ``{"key", "label", "value"}`` in the
    population's dimension order (keys it does not know last, by key)."""
    record = [
        {"key": dimension.key, "label": dimension.label, "value": core[dimension.key]}
        for dimension in population.dimensions
        if core.get(dimension.key) is not None
    ]
    known = set(population.keys)
    for key in sorted(key for key in core if key not in known and core[key] is not None):
        record.append({"key": key, "label": key.replace("_", " ").capitalize(), "value": core[key]})
    return record


def core_mismatches(persona_profile: dict, expected: dict) -> list[str]:
    """The core fields (of ``expected``, what ``persona_fields`` gave) whose value in the persona differs."""
    changed = []
    for field in CORE_FIELDS:
        if field not in expected:
            continue
        value, wanted = persona_profile.get(field), expected[field]
        if field == "age":
            try:
                same = value is not None and int(value) == int(wanted)
            except (TypeError, ValueError):
                same = False
        else:
            same = clean_text("" if value is None else value) == clean_text(wanted)
        if not same:
            changed.append(field)
    return changed


# --- reading a persona into a population's categories ---------------------------------------------------


def _exact(dimension: Dimension, value) -> str | None:
    if value is None or isinstance(value, list | dict):
        return None
    text = clean_text(value)
    return dimension.category(text) if text else None


def _age(dimension: Dimension, value) -> str | None:
    try:
        age = int(str(value).strip())
    except (TypeError, ValueError):
        return _exact(dimension, value)
    for category in dimension.categories:
        bounds = age_bounds(category)
        if bounds and bounds[0] <= age and (bounds[1] is None or age <= bounds[1]):
            return category
    return None


def _gender(dimension: Dimension, value) -> str | None:
    found = _exact(dimension, value)
    if found or value is None:
        return found
    text = clean_text(value).casefold()
    for meaning, words in _GENDER_WORDS.items():
        if text in words or any(re.search(rf"\b{re.escape(word)}\b", text) for word in words if len(word) > 2):
            for category in dimension.categories:
                if category.casefold() in _GENDER_CATEGORY_WORDS[meaning]:
                    return category
            return None
    return None


def _education(dimension: Dimension, value) -> str | None:
    found = _exact(dimension, value)
    if found or not value:
        return found
    text = clean_text(value).casefold()
    for category, pattern in _EDUCATION_RULES:
        if re.search(pattern, text):
            return dimension.category(category)
    return None


def _amount(number: str, unit: str | None) -> float:
    value = float(number.replace(",", ""))
    unit = (unit or "").lower()
    if unit in ("k", "thousand"):
        value *= 1_000
    elif unit in ("m", "million"):
        value *= 1_000_000
    return value


def income_bounds(category: str) -> tuple[float, float] | None:
    """``"Under $15,000"`` -> (0, 14999.99); ``"Over $150,000"`` -> (150000.01, inf); ``"$50k-$75k"`` and
    ``"Between $50,000 and $74,999"`` -> (50000, 75000 / 74999); None when it is not an amount range."""
    text = clean_text(category).lower().replace("–", "-").replace("—", "-")
    amounts = [_amount(number, unit) for number, unit in re.findall(_AMOUNT, text)]
    if not amounts:
        return None
    if re.search(r"under|less than|below|up to|<", text):
        return (0.0, amounts[0] - 0.01 if "up to" not in text else amounts[0])
    if re.search(r"over|more than|above|\+|or more|and up|>", text):
        return (amounts[0] + 0.01 if "or more" not in text and "+" not in text else amounts[0], float("inf"))
    if len(amounts) >= 2:
        return (min(amounts[:2]), max(amounts[:2]))
    return None


def _income(dimension: Dimension, value) -> str | None:
    found = _exact(dimension, value)
    if found or value in (None, ""):
        return found
    text = clean_text(value).lower().replace("–", "-").replace("—", "-")
    amounts = [
        _amount(number, unit)
        for number, unit in re.findall(_AMOUNT, text)
        if unit or float(number.replace(",", "")) >= 1000
    ]
    if not amounts:
        return None
    amount = sum(amounts[:2]) / len(amounts[:2])
    ranges = {category: income_bounds(category) for category in dimension.categories}
    known = {category: bounds for category, bounds in ranges.items() if bounds is not None}
    if len(known) < 2:
        return None
    for category, (low, high) in known.items():
        if low <= amount <= high:
            return category
    below = [(low, category) for category, (low, _) in known.items() if low <= amount]
    return max(below)[1] if below else None


def _region(dimension: Dimension, location) -> str | None:
    found = _exact(dimension, location)
    if found or not location:
        return found
    text = clean_text(location)
    if set(dimension.categories) & set(US_REGIONS_MAP):
        # The last state named: "Kansas City, Missouri" is in Missouri.
        states = _STATE_PATTERN.findall(text)
        if states:
            name = next(state for state in STATE_REGIONS if state.casefold() == states[-1].casefold())
            return dimension.category(STATE_REGIONS[name])
    matches = [
        (match.start(), -len(category), category)
        for category in dimension.categories
        for match in [re.search(rf"\b{re.escape(category)}\b", text, re.IGNORECASE)]
        if match
    ]
    if matches:
        return min(matches)[2]
    if set(dimension.categories) & set(US_REGIONS_MAP):
        abbreviations = [found for found in _ABBREVIATION_PATTERN.findall(text) if found in US_STATE_ABBREVIATIONS]
        if abbreviations:
            return dimension.category(STATE_REGIONS[US_STATE_ABBREVIATIONS[abbreviations[-1]]])
    return None


def _urban_rural(dimension: Dimension, *texts) -> str | None:
    for text in texts:
        found = _exact(dimension, text)
        if found:
            return found
    joined = " ".join(clean_text(text) for text in texts if isinstance(text, str)).casefold()
    for meaning, pattern in _URBAN_RULES:
        if re.search(pattern, joined):
            return dimension.category(meaning)
    return None


def persona_core(profile: dict, population: Population) -> dict[str, str]:
    """A persona's fields read into ``population``'s categories (for the composition of personas that were
    not sampled): age into its band, gender, education, income (an amount into its bracket), region (a
    US state in the location into surveyweights' region), urban/rural from words; any other dimension
    from a profile field of the same key. What cannot be read is left out ("Not stated")."""
    core: dict[str, str] = {}
    for dimension in population.dimensions:
        key = dimension.key
        if key == "age":
            value = _age(dimension, profile.get("age"))
        elif key == "gender":
            value = _gender(dimension, profile.get("gender"))
        elif key == "education":
            value = _education(dimension, profile.get("education"))
        elif key == "income":
            value = _income(dimension, profile.get("income_bracket", profile.get("income")))
        elif key == "region":
            value = _region(dimension, profile.get("location"))
        elif key == "urban_rural":
            value = _urban_rural(dimension, profile.get("location"), profile.get("household"))
        else:
            value = _exact(dimension, profile.get(key, profile.get(dimension.label)))
        if value is not None:
            core[key] = value
    return core
