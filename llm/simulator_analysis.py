"""The offline simulator's analysis: themes, emerging themes and the report, read from the transcript.

Each participant answer is sorted by the angle it speaks from (price, time, features, trust, planet,
quality, health — ``llm.simulator_people``); a theme is an angle more than one answer took, its
quotes are sentences copied from those answers, and the report's stances, findings and recommendations
follow from who took which angle. Nothing is invented beyond the transcript's own words: a quote's
sentiment comes from its words too (a small lexicon)."""

import random
import re
from collections import Counter
from typing import Any

from llm.simulator_people import ANGLES, angle_scores
from llm.simulator_text import first_name, fit, join_list, stable_int

_LINE = re.compile(r"^\[#(\d+)\] ([^:\n]+): (.+)$", re.M)
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that lean one way in what the simulated participants say (``simulator_talk``): a quote with words of
# one side only feels that way, with both mixed (unless one side has two more), with neither neutral.
_POSITIVE = _lexicon(
    "like likes love loved good great nice handy interested interesting appealing appeal keen happy enjoy "
    "worth fair easy easily simple plus better decent fine yes win glad pleased helps help right treat "
    "recommended genuinely intrigued"
)
_NEGATIVE = _lexicon(
    "worry worried wary cancel cancelling caught clunky hidden expensive dearer nightmare greenwashing gone "
    "wouldn't won't can't don't isn't not never cheap creeping problem problems forget faff spam bugs hard bad "
    "sceptical distrust apart false guilty tight mustn't dropped drop stop fear afraid annoying winds piling "
    "sugar vague"
)

_THEME = {
    "price": ("Price has to be clearly worth it", "negative"),
    "time": ("Saving time matters more than a discount", "mixed"),
    "tech": ("The app and its features decide it", "positive"),
    "trust": ("Trust has to be earned first", "negative"),
    "planet": ("Less waste is a real pull", "positive"),
    "quality": ("Quality can justify paying more", "positive"),
    "health": ("People want to know what is in it", "mixed"),
}
_ABOUT = {
    "price": "weighed everything against cost: it has to work out cheaper than what they buy now, and an offer or "
    "a trial would get them to try it",
    "time": "judged it by the time it saves on a weeknight; anything that needs planning ahead loses them",
    "tech": "looked at what it actually does — the app, the features, whether it fits what they already use",
    "trust": "were wary of promises and small print, and want proof from people like them before signing up",
    "planet": "liked the idea of less waste and packaging, as long as the green claims are real",
    "quality": "care how well it is made and would pay a little more for something they enjoy using",
    "health": "want to see the ingredients and nutrition before deciding",
}
_STANCE = {
    "price": "sceptical",
    "time": "positive",
    "tech": "positive",
    "trust": "sceptical",
    "planet": "enthusiastic",
    "quality": "positive",
    "health": "neutral",
}
_POSITION = {
    "price": "would only sign up if it works out cheaper than today's shop; price is the deciding factor",
    "time": "is open to it if it genuinely saves time on busy weeknights without planning ahead",
    "tech": "is keen if the app and features are good, and wants to manage everything from the phone",
    "trust": "wants proof, reviews from people like them and easy cancelling before trusting it",
    "planet": "is drawn by less waste and packaging, provided the green claims hold up",
    "quality": "would pay a bit more if the quality and look live up to the promise",
    "health": "wants clear ingredients and nutrition information before committing",
}
_ADVICE = {
    "price": "Show the price per meal against a typical supermarket shop, and lead with an introductory offer.",
    "time": "Make skipping, pausing and delivery slots effortless, with no planning deadlines.",
    "tech": "Invest in the app: skip, swap and pause in two taps, and show it in the marketing.",
    "trust": "Offer a no-strings trial and one-click cancelling, and use reviews from real customers.",
    "planet": "Make the packaging story concrete: what it is made of and how to recycle it locally.",
    "quality": "Let people see and try the product before committing, and keep quality consistent.",
    "health": "Put ingredients and nutrition on the front, before sign-up.",
}


def _turns(prompt: str, speakers: set[str] | None = None) -> list[tuple[int, str, str]]:
    lines = [(int(n), who.strip(), text.strip()) for n, who, text in _LINE.findall(prompt)]
    return [line for line in lines if line[1] != "Moderator" and (not speakers or line[1] in speakers)]


def _angle(text: str, name: str) -> str | None:
    scores = angle_scores(text)
    best = max(scores, key=lambda key: (scores[key], -stable_int(name, key) % 1000))
    return best if scores[best] else None


def _quote(text: str, angle: str) -> str:
    """The first sentence of ``text`` that speaks from ``angle``, copied exactly."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    for sentence in sentences:
        if angle_scores(sentence)[angle]:
            return sentence
    return sentences[0] if sentences else text


def _groups(turns: list[tuple[int, str, str]]) -> list[tuple[str, list[tuple[int, str, str]]]]:
    groups: dict[str, list[tuple[int, str, str]]] = {}
    for turn in turns:
        angle = _angle(turn[2], turn[1])
        if angle:
            groups.setdefault(angle, []).append(turn)
    return sorted(groups.items(), key=lambda item: (-len({who for _, who, _ in item[1]}), -len(item[1]), item[0]))


def quote_feeling(text: str) -> str:
    """positive, neutral, mixed or negative: how ``text`` reads by the lexicon's words in it."""
    words = _WORDS.findall(text.lower().replace("’", "'"))
    good = sum(word in _POSITIVE for word in words)
    bad = sum(word in _NEGATIVE for word in words)
    if good and bad and abs(good - bad) < 2:
        return "mixed"
    if good > bad:
        return "positive"
    if bad > good:
        return "negative"
    return "neutral"


def _people(turns) -> list[str]:
    return list(dict.fromkeys(who for _, who, _ in turns))


def themes(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """Key themes (quotes) or emerging themes (message numbers), by the angles the answers took."""
    themes_node = (schema.get("properties") or {}).get("themes") or {}
    theme_props = (themes_node.get("items") or {}).get("properties") or {}
    if not isinstance(generated, dict) or "title" not in theme_props:
        return generated
    speakers = set(((theme_props.get("personas") or {}).get("items") or {}).get("enum") or [])
    allowed = set(
        (((theme_props.get("quotes") or {}).get("items") or {}).get("properties") or {}).get("sequence", {}).get("enum")
        or ((theme_props.get("sequences") or {}).get("items") or {}).get("enum")
        or []
    )
    turns = [t for t in _turns(prompt, speakers) if not allowed or t[0] in allowed]
    groups = _groups(turns)
    low, high = themes_node.get("minItems", 1), themes_node.get("maxItems", 5)
    if len(groups) < low or not turns:
        return generated
    made = []
    for angle, said in groups[:high]:
        title, sentiment = _THEME[angle]
        people = _people(said)
        names = join_list([first_name(p) for p in people])
        theme: dict = {"title": fit(title, theme_props.get("title")), "sentiment": sentiment}
        if "description" in theme_props:
            others = [who for _, who, _ in turns if who not in people]
            contrast = f" Others, like {first_name(others[0])}, put other things first." if others else ""
            theme["description"] = fit(f"{names} {_ABOUT[angle]}.{contrast}", theme_props.get("description"))
        if "note" in theme_props:
            theme["note"] = fit(f"{names} {_ABOUT[angle].split(';')[0].split(':')[0]}.", theme_props.get("note"))
        if "personas" in theme_props:
            theme["personas"] = people
        if "quotes" in theme_props:
            limit = (theme_props["quotes"]).get("maxItems", 4)
            feelings = set(
                (((theme_props["quotes"]).get("items") or {}).get("properties") or {}).get("sentiment", {}).get("enum")
                or []
            )
            picked, seen = [], set()
            for sequence, who, text in said:
                if who in seen:
                    continue
                seen.add(who)
                quote: dict[str, Any] = {"sequence": sequence, "text": _quote(text, angle)}
                if feelings:
                    feeling = quote_feeling(quote["text"])
                    quote["sentiment"] = feeling if feeling in feelings else sentiment
                picked.append(quote)
            theme["quotes"] = picked[:limit]
        if "sequences" in theme_props:
            theme["sequences"] = [s for s, _, _ in said][: (theme_props["sequences"]).get("maxItems", 6)]
        made.append(theme)
    return {**generated, "themes": made}


def report(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """A report whose stances, findings and recommendations follow from who said what."""
    props = schema.get("properties") or {}
    if not isinstance(generated, dict) or "stances" not in props or "findings" not in props:
        return generated
    people = {int(i): name.strip() for i, name in re.findall(r"^- id (\d+): ([^(\n]+)", prompt, re.M)}
    turns = _turns(prompt, set(people.values()))
    if not people or not turns:
        return generated
    objective = re.search(r"RESEARCH OBJECTIVE:\n(.+)", prompt)
    by_person: dict[str, Counter[str]] = {name: Counter() for name in people.values()}
    for _, who, text in turns:
        angle = _angle(text, who)
        if angle:
            by_person[who][angle] += 1
    groups = _groups(turns)
    stance_items = ((props["stances"].get("items") or {}).get("properties")) or {}
    ids = (stance_items.get("persona_id") or {}).get("enum") or list(people)
    stances = []
    for persona_id in ids:
        name = people.get(persona_id, "")
        angle = by_person.get(name, Counter()).most_common(1)[0][0] if by_person.get(name) else None
        position = _POSITION[angle] if angle else "said little that showed a clear position"
        stances.append(
            {
                "persona_id": persona_id,
                "stance": _STANCE[angle] if angle else "neutral",
                "summary": fit(f"{first_name(name) or 'This participant'} {position}.", stance_items.get("summary")),
            }
        )
    finding_items = (props["findings"].get("items") or {}).get("properties") or {}
    sections = (finding_items.get("section") or {}).get("enum") or []
    count = props["findings"].get("minItems", len(sections) or 1)
    sections = (sections or [f"Theme {i + 1}" for i in range(count)])[:count]
    size = max(1, -(-len(turns) // max(1, len(sections))))
    findings = []
    for index, section in enumerate(sections):
        part = turns[index * size : (index + 1) * size]
        part_groups = _groups(part)
        if not part:
            summary, points = f"The discussion did not reach {section.lower()}.", []
        else:
            lines = [f"{join_list([first_name(p) for p in _people(said)])} {_ABOUT[a]}" for a, said in part_groups[:2]]
            summary = ". ".join(lines) + "." if lines else "Participants shared their own routines and views."
            points = [_quote(text, _angle(text, who) or "price") for _, who, text in part][:3]
        findings.append(
            {
                "section": section,
                "summary": fit(summary[:1].upper() + summary[1:], finding_items.get("summary")),
                "key_points": [fit(p, (finding_items.get("key_points") or {}).get("items")) for p in points],
            }
        )
    main = [angle for angle, _ in groups]
    headline = (
        f"The panel split by what matters most to them: {join_list([ANGLES[a].label for a in main[:3]])}. "
        if main
        else ""
    )
    leaders = [f"{join_list([first_name(p) for p in _people(said)])} {_ABOUT[a]}" for a, said in groups[:2]]
    aim = objective.group(1).strip().rstrip(".") if objective else ""
    if re.match(
        r"(?:to )?(?:understand|find out|learn|explore|discover|test|assess|evaluate|identify|see)\b", aim, re.I
    ):
        opening = f"The research set out to {re.sub(r'^to ', '', aim[:1].lower() + aim[1:])}. "
    else:
        opening = f"The research asked: {aim}. " if aim else ""
    summary = f"{opening}{headline}{'. '.join(leaders)}. The findings below follow the guide section by section."
    result = {
        **generated,
        "executive_summary": fit(summary, props.get("executive_summary")),
        "findings": findings,
        "stances": stances,
        "recommendations": [_ADVICE[a] for a in main[:5]] or ["Run a second session with a larger panel."],
        "limitations": [
            f"A small panel of {len(people)} participant{'s' if len(people) != 1 else ''}.",
            "Each view was heard once or twice; a larger panel would show how common it is.",
        ],
    }
    rec_max = props.get("recommendations", {}).get("maxItems", 8)
    result["recommendations"] = result["recommendations"][:rec_max]
    return result
