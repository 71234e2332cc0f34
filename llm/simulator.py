"""The offline simulator: plausible, persona-flavoured answers with no network.

Used when no OPENAI_API_KEY is set. Everything it produces is marked
simulated (usage events, and whatever features store from it), and it costs
nothing. It streams like a real model so live pages behave the same.
"""

import hashlib
import json
import logging
import random
import re
import time

import jsonschema
from django.conf import settings

from llm.providers import ProviderRequest, ProviderResponse, ProviderUsage
from llm.schema_faker import fake_instance
from llm.simulator_analysis import report, themes
from llm.simulator_people import profile, sampled_person, sketches
from llm.simulator_quality import judge, probe
from llm.simulator_survey_themes import survey_themes
from llm.simulator_surveys import survey_answers
from llm.simulator_talk import answer, decision, guide, private_answer
from llm.simulator_text import image_url, user_prompt
from llm.simulator_vision import describe
from llm.tokens import count_message_tokens, count_tokens

logger = logging.getLogger(__name__)

_OPENINGS = [
    "Honestly,",
    "For me,",
    "I'll be straight with you:",
    "Speaking as someone who's busy most evenings,",
    "Hmm, good question.",
    "If I'm being practical,",
    "I think",
    "To be fair,",
]
_REASONS = [
    "the price has to feel fair for what I actually get",
    "it needs to save me time, not add another thing to manage",
    "I want to trust the brand before I hand over my card details",
    "quality matters more to me than a flashy discount",
    "if it doesn't fit into my routine I'll forget about it within a week",
    "I'd want to hear from people like me who've tried it",
    "I'm wary of subscriptions that are hard to cancel",
    "being able to see exactly what's included up front makes a big difference",
]
_CLOSINGS = [
    "That's probably what would swing it for me.",
    "Others might feel differently, but that's where I land.",
    "So I'm interested, but not sold yet.",
    "If they got that right, I'd give it a go.",
    "That's my two cents anyway.",
]
_WORD = re.compile(r"[A-Za-z][A-Za-z\-']{3,}")
_STOP = {
    "what",
    "would",
    "your",
    "about",
    "think",
    "that",
    "this",
    "with",
    "have",
    "from",
    "they",
    "there",
    "which",
    "when",
    "where",
    "their",
    "please",
    "tell",
    "describe",
    "reply",
    "answer",
    "should",
    "could",
    "does",
}


def _seed(request: ProviderRequest) -> int:
    digest = hashlib.sha256(
        (request.model + json.dumps(request.messages, sort_keys=True, default=str) + request.seed_hint).encode()
    ).hexdigest()
    return int(digest[:12], 16)


_QUOTED = re.compile(r'says: "(.+?)"', re.S)


def _topic(messages: list[dict]) -> str:
    last_user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    quoted = _QUOTED.search(last_user) if isinstance(last_user, str) else None
    if quoted:  # a discussion turn: the question is quoted inside the prompt
        last_user = quoted.group(1)
    words = [w.lower() for w in _WORD.findall(last_user if isinstance(last_user, str) else "")]
    words = [w for w in words if w not in _STOP]
    return " ".join(words[:3])


def simulated_text(request: ProviderRequest, rng: random.Random) -> str:
    topic = _topic(request.messages)
    reasons = rng.sample(_REASONS, 2)
    about = f" when it comes to {topic}" if topic else ""
    return f"{rng.choice(_OPENINGS)} {reasons[0]}{about}. And {reasons[1]}. {rng.choice(_CLOSINGS)}"


_PERSON = re.compile(
    r"- Name: (?P<name>[^,\n]+), (?P<age>\d+)[^\n]*\n- Lives in: (?P<location>[^\n]+)\n"
    r"- Works as: (?P<occupation>[^\n]+)"
)


def _about_the_person(data, messages: list[dict]):
    """When the prompt describes one person, keep the simulated backstory about them."""
    prompt = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    match = _PERSON.search(prompt) if isinstance(prompt, str) else None
    if not match or not isinstance(data, dict) or "backstory" not in data:
        return data
    first = match["name"].split()[0]
    data["backstory"] = (
        f"{first} is {match['age']}, lives in {match['location'].strip()} and works as "
        f"{match['occupation'].strip().lower()}. Weeknights are busy, so {first} shops with a list, compares prices "
        f"on a phone and sticks with brands that have earned trust over the years."
    )
    return data


_CURRENT_PROFILE = re.compile(r"CURRENT PROFILE \(JSON\):\s*(\{.*\})\s*$", re.S)
_CHANGE = re.compile(r"CHANGE REQUESTED:(.*?)CURRENT PROFILE", re.S)


def _modified_profile(schema: dict, messages: list[dict], generated: dict) -> dict | None:
    """For a persona change: keep the current profile and fold the instruction in, as a model would."""
    prompt = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    if not isinstance(prompt, str):
        return None
    match = _CURRENT_PROFILE.search(prompt)
    if not match:
        return None
    try:
        current = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    change = _CHANGE.search(prompt)
    instruction = re.sub(r"<<<[^>]*>>>", "", change.group(1) if change else "").strip().rstrip(".")
    result = dict(generated)
    for key in schema.get("properties", {}):
        if key == "personality":
            traits = schema["properties"]["personality"]["properties"]
            result["personality"] = {
                t: current.get(t) if isinstance(current.get(t), int) else generated["personality"][t] for t in traits
            }
        elif current.get(key) not in (None, "", []):
            result[key] = current[key]
    if isinstance(result.get("age"), int):
        result["age"] = min(90, max(18, result["age"]))
    if result.get("tech_savviness") not in ("low", "medium", "high"):
        result["tech_savviness"] = generated.get("tech_savviness", "medium")
    if instruction:
        result["buying_behaviour"] = f"{result.get('buying_behaviour', '')} Now: {instruction}.".strip()
        result["values"] = [*result.get("values", []), instruction[:60]]
    return result


def _pick_speaker(data, messages: list[dict], rng: random.Random):
    """A moderator decision names someone actually in the room, preferring who spoke least."""
    prompt = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    if not isinstance(data, dict) or "next_speaker" not in data or not isinstance(prompt, str):
        return data
    lines = re.findall(r"^- (.+?): (\d+) turns?$", prompt, re.M)
    if lines:
        fewest = min(int(count) for _, count in lines)
        data["next_speaker"] = rng.choice([name for name, count in lines if int(count) == fewest])
        data["reason"] = f"{data['next_speaker'].split()[0]} has spoken least so far."
    return data


def _one_stance_each(data, schema: dict):
    """A report's stance table gives each participant id of the enum once, as the prompt asks a model to."""
    stances = data.get("stances") if isinstance(data, dict) else None
    row = ((schema.get("properties") or {}).get("stances") or {}).get("items") or {}
    ids = ((row.get("properties") or {}).get("persona_id") or {}).get("enum")
    if isinstance(stances, list) and isinstance(ids, list) and len(stances) == len(ids):
        for stance, persona_id in zip(stances, ids, strict=True):
            if isinstance(stance, dict):
                stance["persona_id"] = persona_id
    return data


def _crafted(schema: dict, request: ProviderRequest, data, rng: random.Random):
    """``data`` rewritten for what the request is for — a panel within the brief, a profile with a point of
    view, a guide about the objective, a moderator that follows it, themes and a report from the transcript —
    or ``data`` itself when it is not one of those (or the rewrite would not fit ``schema``)."""
    if not isinstance(data, dict):
        return data
    properties = schema.get("properties") or {}
    prompt = user_prompt(request.messages)
    if "personas" in properties:
        crafted = sketches(schema, prompt, data, rng)
    elif "THE PERSON (sampled from" in prompt and "name" in properties:
        crafted = sampled_person(schema, prompt, data, rng)
    elif "backstory" in properties and "THE PERSON:" in prompt:
        crafted = profile(schema, prompt, data, rng)
    elif "sections" in properties and "RESEARCH OBJECTIVE" in prompt:
        crafted = guide(schema, prompt, data, rng)
    elif "next_speaker" in properties:
        crafted = decision(schema, prompt, data, rng)
    elif "themes" in properties:
        crafted = themes(schema, prompt, data, rng)
    elif "stances" in properties and "findings" in properties:
        crafted = report(schema, prompt, data, rng)
    else:
        return data
    try:
        jsonschema.Draft202012Validator(schema).validate(crafted)
    except jsonschema.ValidationError as exc:
        logger.warning(
            "Simulator: a crafted %s answer broke its schema (%s); using a generic one", request.seed_hint, exc.message
        )
        return data
    return crafted


def _survey_answers(schema: dict, messages: list[dict]) -> dict | None:
    """A survey questionnaire is answered from the respondent's profile (llm/simulator_surveys.py)."""
    prompt = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return survey_answers(schema, prompt) if isinstance(prompt, str) else None


def simulated_json(request: ProviderRequest, rng: random.Random) -> str:
    response_format = request.response_format or {}
    if response_format.get("type") == "json_schema":
        schema = response_format["json_schema"]["schema"]
        if request.seed_hint in ("persona_judge", "quality_probe"):  # quality checks (llm/simulator_quality.py)
            prompt = user_prompt(request.messages)
            quality = judge(schema, prompt) if request.seed_hint == "persona_judge" else probe(schema, prompt, rng)
            if quality is not None:
                return json.dumps(quality)
        if request.seed_hint == "private_answer":  # a focus group's conformity check (llm/simulator_talk.py)
            private = private_answer(schema, user_prompt(request.messages))
            if private is not None:
                return json.dumps(private)
        if request.seed_hint == "survey_themes":  # the feature: its "themes" are not a transcript's
            found = survey_themes(schema, user_prompt(request.messages))
            if found is not None:
                return json.dumps(found)
        survey = _survey_answers(schema, request.messages)
        if survey is not None:
            return json.dumps(survey)
        data = fake_instance(schema, seed=rng.randrange(2**31), hint=_topic(request.messages))
        modified = _modified_profile(schema, request.messages, data)
        if modified is not None:
            return json.dumps(modified)
        data = _pick_speaker(data, request.messages, rng)
        data = _one_stance_each(data, schema)
        data = _about_the_person(data, request.messages)
        return json.dumps(_crafted(schema, request, data, rng))
    return json.dumps({"answer": simulated_text(request, rng)})


def simulated_reply(request: ProviderRequest, rng: random.Random) -> str:
    """A plain-text answer: an image described from its properties, a persona speaking from their profile,
    or a short generic answer about the prompt's topic."""
    url = image_url(request.messages)
    if url is not None:
        described = describe(url, for_personas=request.seed_hint != "asset_description")
        if described:
            return described
    spoken = answer(request.messages, rng)
    return spoken or simulated_text(request, rng)


def _chunks(text: str) -> list[str]:
    # Word-sized pieces stream like tokens do.
    return re.findall(r"\S+\s*|\s+", text)


class SimulatedProvider:
    name = "simulator"
    simulated = True

    def complete(self, request: ProviderRequest) -> ProviderResponse:
        started = time.monotonic()
        rng = random.Random(_seed(request))
        text = simulated_json(request, rng) if request.response_format else simulated_reply(request, rng)
        delay = settings.LLM_SIMULATOR_TOKEN_DELAY
        ttft = None
        for piece in _chunks(text):
            if delay:
                time.sleep(delay)
            if ttft is None:
                ttft = time.monotonic() - started
            if request.on_delta is not None:
                request.on_delta(piece)
        return ProviderResponse(
            text=text,
            finish_reason="stop",
            usage=ProviderUsage(input_tokens=count_message_tokens(request.messages), output_tokens=count_tokens(text)),
            ttft_s=ttft or 0.0,
            latency_s=time.monotonic() - started,
            model=request.model,
        )
