"""Offline survey answers that follow the respondent's profile.

The generic simulator fills a schema with plausible but random values, which would make every
persona's distribution flat and alike. For a survey prompt (surveys/prompts/respondent.md) this reads
the profile and each question, and answers like that person would: someone price-sensitive objects
to price, someone comfortable with technology likes the app, everyone has their own general mood;
wording varies from answer to answer, and the number asked for directly agrees with the words.
"""

import hashlib
import random
import re

_QUESTION = re.compile(r"^### (q\d+) \((.+?)\)\n(.+?)(?=\n### |\Z)", re.S | re.M)
_PRICE_WORDS = ("price", "budget", "cheap", "deal", "discount", "afford", "frugal", "coupon", "value for money",
                "bargain", "save", "tight", "hidden fees", "cost")  # fmt: skip
_PRICE_TOPICS = ("price", "pay", "cost", "expensive", "£", "$", "€", "subscription", "fee", "worth", "afford")
_TECH_TOPICS = ("app", "online", "digital", "smart", "website", "phone", "ai", "technology")
_GREEN_TOPICS = ("sustainab", "eco", "green", "environment", "recycl", "organic", "local")

_AGREEMENT = [
    ["I strongly disagree.", "No, I really don't agree with that at all.", "Absolutely not, I completely disagree."],
    ["I disagree.", "I don't really agree with that.", "Not really, I'd say I disagree."],
    ["I neither agree nor disagree.", "I'm on the fence about it.", "Honestly, I'm neutral on this one."],
    ["I agree.", "Yes, I mostly agree with that.", "I'd say I agree."],
    ["I strongly agree.", "Yes, I completely agree.", "Absolutely, I strongly agree with that."],
]
_LIKELY = [
    ["I definitely would not.", "Extremely unlikely, no way.", "Not at all likely."],
    ["Probably not.", "I'm unlikely to.", "It's not very likely."],
    ["Maybe, maybe not.", "I might or might not.", "It's fifty-fifty for me."],
    ["Probably, yes.", "I'm fairly likely to.", "Quite likely, I think."],
    ["Definitely, yes.", "Extremely likely.", "I certainly would."],
]
_REASONS = {
    "price": ["the price puts me off; I watch every penny", "it costs more than I'd want to pay",
              "money is tight, so the cost matters most"],
    "price_ok": ["the price seems fair for what you get", "I don't mind paying for quality"],
    "tech": ["I like doing things on my phone", "an app makes it easy for me"],
    "tech_low": ["I'm not great with apps and gadgets", "I'd rather not fiddle with technology"],
    "green": ["I care where things come from", "being sustainable matters to me"],
    "neutral": ["it depends on the day", "it would have to fit my routine", "I'd want to hear from friends first",
                "I'd need to see it for myself", "I'm a creature of habit"],
}  # fmt: skip


def _profile(prompt: str) -> str:
    start, end = prompt.find("ABOUT YOU"), prompt.find("THE SURVEY")
    return prompt[start:end].lower() if start >= 0 and end > start else ""


def _lean(profile: str, question: str, mood: float) -> tuple[float, str]:
    """How positive this person is about this question (about -2…2), and why."""
    text = question.lower()
    price_sensitive = sum(word in profile for word in _PRICE_WORDS) >= 2
    lean, why = mood, "neutral"
    if any(word in text for word in _PRICE_TOPICS):
        lean, why = (lean - 1.6, "price") if price_sensitive else (lean + 0.5, "price_ok")
    elif any(word in text for word in _TECH_TOPICS):
        high = "technology: high" in profile
        low = "technology: low" in profile
        lean, why = (lean + 1.0, "tech") if high else ((lean - 1.0, "tech_low") if low else (lean, why))
    elif any(word in text for word in _GREEN_TOPICS) and any(word in profile for word in _GREEN_TOPICS):
        lean, why = lean + 1.0, "green"
    return lean, why


def _level(lean: float, rng: random.Random) -> int:
    """0…4 from the lean, with some noise, so answers cluster without being identical."""
    return max(0, min(4, round(2 + lean + rng.gauss(0, 0.6))))


def _rating(level: int, values: list[int], rng: random.Random) -> int:
    span = len(values) - 1
    position = (level + rng.uniform(-0.4, 0.4)) / 4 * span
    return values[max(0, min(span, round(position)))]


def survey_answers(schema: dict, prompt: str) -> dict | None:
    """Answers for a survey prompt, or None when the prompt is not one."""
    if "QUESTIONS\n" not in prompt or "ABOUT YOU" not in prompt:
        return None
    profile = _profile(prompt)
    seed = int(hashlib.sha256(profile.encode()).hexdigest()[:12], 16)
    rng = random.Random(seed)
    mood = rng.uniform(-0.9, 0.9)
    texts = {key: body for key, _, body in _QUESTION.findall(prompt)}
    answers = {}
    for key, spec in (schema.get("properties") or {}).items():
        question = texts.get(key, "")
        lean, why = _lean(profile, question.split("\n")[0], mood)
        level = _level(lean, rng)
        bank = _LIKELY if "likely" in question.lower() or "recommend" in question.lower() else _AGREEMENT
        reason = rng.choice(_REASONS[why])
        answer = {"answer": f"{rng.choice(bank[level])} {reason[0].upper()}{reason[1:]}."}
        fields = spec.get("properties") or {}
        if "rating" in fields:
            answer["rating"] = _rating(level, fields["rating"]["enum"], rng)
        if "choice" in fields or "choices" in fields:
            options = (fields.get("choice") or fields["choices"]["items"])["enum"]
            cheap = [o for o in options if any(w in o.lower() for w in ("cheap", "low", "free", "basic", "price"))]
            pick = cheap[0] if cheap and why == "price" else options[rng.randrange(len(options))]
            if "choice" in fields:
                answer["choice"] = pick
            else:
                answer["choices"] = list(
                    dict.fromkeys([pick, *rng.sample(options, rng.randint(0, min(2, len(options))))])
                )
            answer["answer"] = f"I'd go for {pick}, because {reason}."
        elif "rating" not in fields and bank is _AGREEMENT and level == 2 and len(fields) == 1:
            answer["answer"] = (
                f"{reason[0].upper()}{reason[1:]}, to be honest. {rng.choice(_REASONS['neutral']).capitalize()}."
            )
        answers[key] = answer
    return answers
