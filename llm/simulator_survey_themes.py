"""Offline themes of a survey question's open answers (feature ``survey_themes``), read from the answers.

The prompt (surveys/prompts/themes.md) numbers the answers inside a fenced block. Each sentence of an
answer is sorted by the angle it speaks from most (price, time, features, trust, planet, quality, health:
the cue words of ``llm.simulator_people``, which the simulated respondents answer from); a theme is an
angle some answers took, with the numbers of those answers, a sentiment from those sentences' words
(``quote_feeling``), and quotes that are those sentences, copied exactly. Titles are fixed per angle, so
a later part of a long question names the same theme the same way, as the prompt asks of a model. Nothing
is invented beyond the answers' own words; answers that take no angle are left out, as a model would.
"""

import re

from llm.simulator_analysis import quote_feeling
from llm.simulator_people import ANGLES, angle_scores
from llm.simulator_text import fit

_BLOCK = re.compile(r"<<<REFERENCE answers[^\n]*>>>\n(.*?)\n<<<END REFERENCE answers>>>", re.S)
_ANSWER = re.compile(r"^\[(\d+)\] (.+)$", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

# Per angle: the theme's title, what its respondents say (one sentence), and its sentiment when their words
# lean neither way.
_THEMES = {
    "price": ("Price and value for money", "It has to be worth the money: the price next to what they pay now, "
              "an offer to try it, and no hidden costs.", "negative"),
    "time": ("Convenience in a busy week", "It has to be easy to get hold of and fit the routine they already "
             "have, without a trip out of their way.", "mixed"),
    "tech": ("Ordering online and from the phone", "They want to find it, read about it and order it online or "
             "from their phone, with the rest of their shopping.", "positive"),
    "trust": ("Trust in the brand and reviews", "They want to know who is behind it and hear from people who "
              "have tried it before they believe the claims.", "mixed"),
    "planet": ("Sustainability and packaging", "They want proof that it is better for the planet: local "
               "ingredients, less packaging, and no greenwashing.", "positive"),
    "quality": ("Quality against what they use now", "They judge it on whether it is as good as what they have "
                "now, and would pay a little more for better.", "positive"),
    "health": ("Ingredients and health", "They want to see what is in it first: sugar, additives and the "
               "nutrition label.", "mixed"),
}  # fmt: skip


def _answers(prompt: str) -> list[tuple[int, str]]:
    block = _BLOCK.search(prompt)
    return [(int(n), text.strip()) for n, text in _ANSWER.findall(block.group(1))] if block else []


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def _main_angle(sentence: str) -> str | None:
    """The angle a sentence speaks from most (ties in ``ANGLES`` order), or None when it takes none."""
    scores = angle_scores(sentence)
    best = max(ANGLES, key=lambda key: scores[key])
    return best if scores[best] else None


def _sentiment(texts: list[str], default: str) -> str:
    feelings = [quote_feeling(text) for text in texts]
    good, bad = feelings.count("positive"), feelings.count("negative")
    if not good and not bad:
        return default
    if good > 2 * bad:
        return "positive"
    if bad > 2 * good:
        return "negative"
    return "mixed"


def _quotes(said: list[tuple[int, str]]) -> list[dict]:
    """Up to three quotes from different answers, each different words."""
    quotes: list[dict] = []
    for number, sentence in said:
        if all(q["text"] != sentence and q["answer"] != number for q in quotes):
            quotes.append({"answer": number, "text": sentence})
        if len(quotes) == 3:
            break
    return quotes


def survey_themes(schema: dict, prompt: str) -> dict | None:
    """Themes for a survey-themes prompt, or None when it has no numbered answers to read."""
    answers = _answers(prompt)
    themes_node = (schema.get("properties") or {}).get("themes") or {}
    props = (themes_node.get("items") or {}).get("properties") or {}
    if not answers or "answers" not in props:
        return None
    # Per angle, the sentences that speak from it most, with the number of their answer: an answer voices
    # every theme one of its sentences is about.
    groups: dict[str, list[tuple[int, str]]] = {}
    for number, text in answers:
        for sentence in _sentences(text):
            angle = _main_angle(sentence)
            if angle:
                groups.setdefault(angle, []).append((number, sentence))
    ordered = sorted(groups.items(), key=lambda item: (-len({n for n, _ in item[1]}), list(ANGLES).index(item[0])))
    themes = []
    for angle, said in ordered[: themes_node.get("maxItems", 8)]:
        title, about, leaning = _THEMES.get(angle, (ANGLES[angle].label.capitalize(), "What they care about.", "mixed"))
        themes.append(
            {
                "title": fit(title, props.get("title")),
                "description": fit(about, props.get("description")),
                "sentiment": _sentiment([sentence for _, sentence in said], leaning),
                "answers": list(dict.fromkeys(number for number, _ in said)),
                "quotes": _quotes(said),
            }
        )
    if not themes:  # no answer takes an angle: one theme of what they said, as a model would sum it up
        themes.append(
            {
                "title": "Other views",
                "description": "Respondents answered from their own situation, without one shared concern.",
                "sentiment": _sentiment([text for _, text in answers], "mixed"),
                "answers": [number for number, _ in answers],
                "quotes": _quotes([(number, _sentences(text)[0]) for number, text in answers]),
            }
        )
    return {"themes": themes}
