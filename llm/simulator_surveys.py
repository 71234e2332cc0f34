"""Offline survey answers that follow the respondent's profile.

The generic simulator fills a schema with plausible but random values, which would make every
persona's distribution flat and alike. For a survey prompt (surveys/prompts/respondent.md) this reads
the profile and each question, and answers like that person would: someone price-sensitive objects
to price, someone comfortable with technology likes the app, everyone has their own general mood;
wording varies from answer to answer, and the number asked for directly agrees with the words. An
open question is answered with what that person would say to what it asks (what they want to know,
what would win them over or put them off) from the angle they speak from (price, time, trust…, read
from the profile as ``llm.simulator_people`` does), never with a yes or no; one person does not
give the same reason twice.
"""

import hashlib
import random
import re
from typing import Any

from llm.simulator_people import angles_of

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


# Why someone feels as they do, from the angle they speak from (used where the question itself does
# not touch price, technology or the planet).
_ANGLE_REASONS = {
    "price": ["the price matters most to me", "I watch every penny", "it has to be worth the money"],
    "tech": ["I like things I can sort out from my phone", "I'd want it to be easy to order online"],
    "time": ["it has to fit into a busy week", "I haven't got time to shop around"],
    "trust": ["I stick with brands I know", "I'd want to hear from people who've tried it"],
    "planet": ["I care where things come from", "I try to buy what's better for the planet"],
    "quality": ["it has to be as good as what I have now", "I'd rather pay for something that's done properly"],
    "health": ["I watch what goes into my body", "I always read the label for sugar and additives"],
}
# Open questions: what the person would say, by what the question asks and the angle they speak from.
_OPEN_ASKS = [
    ("know", re.compile(r"\b(know|find out|ask|check|information|first thing|need to see)\b", re.I)),
    ("off", re.compile(r"\b(put you off|worr\w*|concern\w*|dislike|stop you|downside|least|problem|risk)\b", re.I)),
    ("change", re.compile(r"\b(switch|change|convince|persuade|make you|try|start|win you)\b", re.I)),
    ("like", re.compile(r"\b(like|love|appeal\w*|best|favourite|enjoy|stand out)\b", re.I)),
]
_OPEN = {
    "know": {
        "price": ["How much it costs next to what I buy now, and whether it's ever on offer.",
                  "The price, honestly. If it's dearer than my usual, what am I getting for the extra?"],
        "tech": ["Whether I can order it online and get it delivered with the rest of my shopping.",
                 "Where to find the details quickly: a proper website, reviews, what's in it."],
        "time": ["Whether my usual shop stocks it. I'm not going out of my way for it.",
                 "How long it keeps once it's open, because I only shop once a week."],
        "trust": ["Who actually makes it, and whether anyone I know has tried it.",
                  "What's really in it. I read the label before I trust a new brand."],
        "planet": ["Where it's made and whether the packaging really gets recycled.",
                   "How it's produced: local ingredients, less plastic, that sort of thing."],
        "quality": ["What it's like compared with the one I use now. If it's worse, that's that.",
                    "How it's made and what goes into it; I can usually tell a cheap version."],
        "health": ["What's in it: sugar, additives, whether anything's added to it.",
                   "The nutrition label, first thing. Sugar and additives especially."],
    },
    "change": {
        "price": ["A lower price than what I pay now, or a decent offer so I can try it without risk.",
                  "If it worked out cheaper over a month, I'd switch tomorrow."],
        "tech": ["If I could add it to my online order in a couple of taps, I'd give it a go.",
                 "Good reviews online and an easy way to order it."],
        "time": ["If it were right there in my usual shop and lasted longer in the fridge.",
                 "Convenience. If it's easier than what I do now, I'll switch."],
        "trust": ["A friend recommending it, or a brand I already know standing behind it.",
                  "Seeing it do well for a while first. I don't jump on new things."],
        "planet": ["Proof it's genuinely better for the environment, not just a green label.",
                   "Local ingredients and packaging I can actually recycle at home."],
        "quality": ["If it's noticeably better than what I have now. I'd pay a bit more for that.",
                    "Trying it and finding it's as good as it claims."],
        "health": ["If it were clearly healthier: less sugar, nothing artificial.",
                   "My doctor or a dietitian saying it's good for me would do it."],
    },
    "off": {
        "price": ["The price. If it costs more than I pay now, I won't buy it twice.",
                  "Hidden costs, or the price creeping up once I'm used to it."],
        "tech": ["If it's hard to find online or the website is clunky.",
                 "Not being able to order it the way I order everything else."],
        "time": ["Having to go to a different shop just for it.", "If it goes off quickly and I waste it."],
        "trust": ["A brand I've never heard of making big claims.", "Bad reviews from people I know."],
        "planet": ["Greenwashing. Lots of claims on the pack and nothing behind them.",
                   "More packaging than it needs."],
        "quality": ["If it's not as good as what I use now.", "Cutting corners to hit a price."],
        "health": ["Added sugar or a long list of things I can't pronounce.", "Anything artificial."],
    },
    "like": {
        "price": ["If the price is fair, that's what I'd like most.", "Good value. That's what I look for."],
        "tech": ["Being able to order it from my phone.", "Anything that makes it easier to get hold of."],
        "time": ["That it could save me a trip.", "Anything that makes the week a bit easier."],
        "trust": ["That it's straightforward about what it is.", "A name I can rely on."],
        "planet": ["That it's kinder to the planet.", "Less waste, and knowing where it comes from."],
        "quality": ["That it's made properly.", "Good quality. I notice the difference."],
        "health": ["That it sounds like a healthier option.", "Simple ingredients."],
    },
    "general": {
        "price": ["For me it all comes down to price.", "It depends what it costs; money is tight."],
        "tech": ["I'd look it up online before deciding.", "If it's easy to order, I'm interested."],
        "time": ["It has to fit my routine; I haven't much time.", "Only if it's easy to get hold of."],
        "trust": ["I'd want to know more about who's behind it.", "I'd wait to hear what others think."],
        "planet": ["I'd want to know it's better for the environment.", "Where it comes from matters to me."],
        "quality": ["It has to be good; I'd rather pay for quality.", "I'd judge it on how good it is."],
        "health": ["I'd look at what's in it first.", "It has to be good for me."],
    },
}  # fmt: skip


def _angles(profile: str, seed: int) -> list[str]:
    """The two angles this person speaks from most; people whose profile shows none differ by chance."""
    return angles_of(profile, name=str(seed))[:2]


def _open_answer(question: str, angles: list[str], rng: random.Random, used: set[str]) -> str:
    """What this person says to an open question: by what it asks, from their main angle (and now and
    then their second one too), never a sentence they have already said."""
    asks = next((name for name, pattern in _OPEN_ASKS if pattern.search(question)), "general")
    bank = _OPEN[asks]
    first = [line for line in bank[angles[0]] if line not in used] or bank[angles[0]]
    answer = rng.choice(first)
    used.add(answer)
    if len(angles) > 1 and rng.random() < 0.4:
        second = [line for line in bank[angles[1]] if line not in used]
        if second:
            extra = rng.choice(second)
            used.add(extra)
            answer = f"{answer} {extra}"
    return answer


def _reason(why: str, angles: list[str], rng: random.Random, used: set[str]) -> str:
    bank = _REASONS[why] if why != "neutral" else _ANGLE_REASONS.get(angles[0], _REASONS["neutral"])
    fresh = [r for r in bank if r not in used] or [r for r in _REASONS["neutral"] if r not in used] or bank
    reason = rng.choice(fresh)
    used.add(reason)
    return reason


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


# A survey quality check's leading twin (surveys/prompts/leading_twin.md): the neutral question with a
# social-proof opener, as a model asked to lead toward the top of the scale would write it.
_TWIN_QUESTION = re.compile(r"THE NEUTRAL QUESTION\n(.+?)\nScale:", re.S)
_LEADING_OPENER = "Most people who have tried it really like it."
# What makes a simulated respondent lean toward the answer a question suggests: sycophancy, on purpose, so the
# quality check's leading-question pass has something to find offline. Modest: about half a point on a
# 5-point scale, less than a strong opinion moves it.
_LEADING_CUES = ("most people", "everyone", "really like", "love it", "don't you")
_LEADING_NUDGE = 0.6


def leading_twin(schema: dict, prompt: str) -> dict | None:
    """A leading twin of the prompt's neutral question, or None when the prompt is not asking for one."""
    found = _TWIN_QUESTION.search(prompt)
    if "LEADING TWIN" not in prompt or found is None or "leading" not in (schema.get("properties") or {}):
        return None
    question = " ".join(found.group(1).split())
    return {"leading": f"{_LEADING_OPENER} {question[:1].upper()}{question[1:]}"}


def _leading_nudge(question: str) -> float:
    text = question.lower()
    return _LEADING_NUDGE if any(cue in text for cue in _LEADING_CUES) else 0.0


def survey_answers(schema: dict, prompt: str) -> dict | None:
    """Answers for a survey prompt (or a quality check's leading twin), or None when the prompt is not one."""
    twin = leading_twin(schema, prompt)
    if twin is not None:
        return twin
    if "QUESTIONS\n" not in prompt or "ABOUT YOU" not in prompt:
        return None
    profile = _profile(prompt)
    seed = int(hashlib.sha256(profile.encode()).hexdigest()[:12], 16)
    rng = random.Random(seed)
    mood = rng.uniform(-0.9, 0.9)
    found = _QUESTION.findall(prompt)
    texts = {key: body for key, _, body in found}
    kinds = {key: kind for key, kind, _ in found}
    angles = _angles(profile, seed)
    used: set[str] = set()
    answers = {}
    for key, spec in (schema.get("properties") or {}).items():
        question = texts.get(key, "")
        fields = spec.get("properties") or {}
        if kinds.get(key) == "Open text":
            answers[key] = {"answer": _open_answer(question.split("\n")[0], angles, rng, used)}
            continue
        lean, why = _lean(profile, question.split("\n")[0], mood)
        lean += _leading_nudge(question.split("\n")[0])
        level = _level(lean, rng)
        bank = _LIKELY if "likely" in question.lower() or "recommend" in question.lower() else _AGREEMENT
        reason = _reason(why, angles, rng, used)
        answer: dict[str, Any] = {"answer": f"{rng.choice(bank[level])} {reason[0].upper()}{reason[1:]}."}
        if "rating" in fields:
            answer["rating"] = _rating(level, fields["rating"]["enum"], rng)
        if "choice" in fields or "choices" in fields:
            options = (fields.get("choice") or fields["choices"]["items"])["enum"]
            cheap = [o for o in options if any(w in o.lower() for w in ("cheap", "low", "free", "basic", "price"))]
            pick = cheap[0] if cheap and why == "price" else options[rng.randrange(len(options))]
            if "choice" in fields:
                answer["choice"] = pick
                answer["answer"] = f"I'd go for {pick}, because {reason}."
            else:
                picked = list(dict.fromkeys([pick, *rng.sample(options, rng.randint(0, min(2, len(options))))]))
                answer["choices"] = picked
                named = picked[0] if len(picked) == 1 else f"{', '.join(picked[:-1])} and {picked[-1]}"
                answer["answer"] = f"{named}, mostly, because {reason}."
        answers[key] = answer
    return answers
