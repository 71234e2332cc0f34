"""Offline answers for quality checks: the persona judge's scores (``persona_judge``) and a persona's probe
interview with its Big Five items (``quality_probe``).

The judge reads the fenced profile and the numbered answers of personas/prompts/persona_judge.md and
scores them the way the prompt's propositions say, from plain word evidence, so the scores move with what
was said rather than being fixed:
* adherence: an answer that breaks character (mentions being an AI or a language model) scores 1; else
  more profile words (job, place, values, interests, brands) in the answers score higher, 4 to 8;
* self-consistency: the two answers that share the most wording are taken as the repeated one (the probe
  asks one thing twice); when no two answers share much, it scores low, 3 to 8.

The probe answers from the profile in panels/prompts/quality_probe.md: the Big Five items on 1–6 from the
persona's own trait scores (reverse-keyed items mirrored), the open answers from their job, values and
buying habits, with the repeated question answered alike, as a consistent person would.
"""

import random
import re

from llm.simulator_text import STOPWORDS

_FENCE = r"<<<REFERENCE {label}[^\n]*>>>\n(.*?)\n<<<END REFERENCE {label}>>>"
_PROFILE = re.compile(_FENCE.format(label=re.escape("the persona's profile")), re.S)
_ANSWERS = re.compile(_FENCE.format(label=re.escape("what the persona said (questions and answers)")), re.S)
_QA = re.compile(r"^Q(\d+): (.*?)\nA\1: (.*?)(?=\n\nQ\d+: |\Z)", re.S | re.M)
_LINE = re.compile(r"^- ([^:\n]+): (.+)$", re.M)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
_OUT_OF_CHARACTER = re.compile(r"\b(as an ai|language model|an ai assistant|i am an ai|i'm an ai|simulated persona)\b")
# The short, specific fields: a word from these in an answer is the person talking, not filler.
_PROFILE_FIELDS = ("Works as", "Lives in", "Values", "Interests", "Brands they like", "Frustrations")


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text or "")} - STOPWORDS


def _profile(prompt: str) -> dict[str, str]:
    match = _PROFILE.search(prompt)
    return dict(_LINE.findall(match.group(1))) if match else {}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def judge(schema: dict, prompt: str) -> dict | None:
    """Scores for the persona judge, or None when the prompt is not the judge's."""
    properties = schema.get("properties") or {}
    if set(properties) != {"adherence", "consistency"}:
        return None
    block = _ANSWERS.search(prompt)
    pairs = [(q.strip(), a.strip()) for _, q, a in _QA.findall(block.group(1))] if block else []
    profile = _profile(prompt)
    said = " ".join(answer for _, answer in pairs)
    profile_words = set().union(*(_words(profile.get(field, "")) for field in _PROFILE_FIELDS))
    hits = sorted(profile_words & _words(said))
    if _OUT_OF_CHARACTER.search(said.lower()):
        adherence, why = 1, "An answer breaks character: the persona talks about being an AI, not as this person."
    elif not pairs:
        adherence, why = 0, "There are no answers to judge."
    else:
        adherence = min(8, 4 + len(hits))
        why = (
            f"The answers draw on the profile ({', '.join(hits[:4])})."
            if hits
            else "The answers are generic: nothing in them ties to this person's job, place or values."
        )
    consistency, because = _consistency(pairs)
    return {
        "adherence": {"reason": why, "score": adherence},
        "consistency": {"reason": because, "score": consistency},
    }


def _consistency(pairs: list[tuple[str, str]]) -> tuple[int, str]:
    """A consistent person repeats themselves somewhere (the probe asks one thing twice): the two answers
    that share the most wording are taken as the repeat. Nothing shared anywhere reads as disagreement."""
    if len(pairs) < 2:
        return 5, "Only one answer: there is nothing to compare it with."
    best, twins = -1.0, (0, 1)
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            agreement = _overlap(_words(pairs[i][1]), _words(pairs[j][1]))
            if agreement > best:
                best, twins = agreement, (i, j)
    i, j = twins
    score = max(3, min(8, 3 + round(best * 12)))
    if score >= 6:
        return score, f"Q{i + 1} and Q{j + 1} get the same answer in substance; nothing contradicts it."
    return score, "No two answers agree with each other: what the persona says shifts from answer to answer."


# --- the probe interview -------------------------------------------------------------------------------------

_TRAIT = re.compile(r"(openness|conscientiousness|extraversion|agreeableness|neuroticism) (\d+)")
_ITEM_KEY = re.compile(r"^- ([ACENO][1-5]): ", re.M)
# The IPIP items of psych's bfi, as a model knows them: the letter is the trait, and these are reverse-keyed.
_ITEM_TRAITS = {
    "A": "agreeableness",
    "C": "conscientiousness",
    "E": "extraversion",
    "N": "neuroticism",
    "O": "openness",
}
_REVERSE_KEYED = {"A1", "C4", "C5", "E1", "E2", "O2", "O5"}


def _first(profile: dict[str, str], field: str, default: str) -> str:
    value = profile.get(field, "").split(",")[0].strip()
    return value or default


def probe(schema: dict, prompt: str, rng: random.Random) -> dict | None:
    """A persona's probe answers and Big Five items, or None when the prompt is not the probe's."""
    properties = schema.get("properties") or {}
    if set(properties) != {"answers", "items"}:
        return None
    profile = dict(_LINE.findall(prompt))
    traits = {trait: int(score) for trait, score in _TRAIT.findall(profile.get("Personality (Big Five, 0–100)", ""))}
    items = {}
    for key in _ITEM_KEY.findall(prompt):
        level = traits.get(_ITEM_TRAITS[key[0]], 50) / 100
        answer = min(6, max(1, 1 + round(level * 5 + rng.uniform(-0.6, 0.6))))
        items[key] = 7 - answer if key in _REVERSE_KEYED else answer
    for key in properties["items"].get("properties") or {}:
        items.setdefault(key, 3 + rng.randrange(2))
    job = _first(profile, "Works as", "my job")
    place = _first(profile, "Lives in", "home")
    value = _first(profile, "Values", "my family")
    second = ([*profile.get("Values", "").split(","), ""])[1].strip() or "being treated fairly"
    habit = profile.get("How they buy", "").strip().rstrip(".") or "I compare prices before I buy anything"
    frustration = _first(profile, "Frustrations", "hidden fees")
    questions = list(properties["answers"].get("properties") or {})
    texts = [
        f"Most weekdays it's work as {job.lower()} and then home in {place}. Evenings are for the people I live "
        f"with, and I try to keep weekends free.",
        f"{value} comes first for me, then {second.lower()}. That's what I fall back on when a decision is hard.",
        f"The last big one was replacing something that broke. {habit}. I only paid more because it would last.",
        f"Not straight away. {frustration} put me off new brands, so I'd want to try it once before switching.",
        f"{value} comes first for me, then {second.lower()}. Everything else is negotiable.",
    ]
    answers = {key: texts[index % len(texts)] for index, key in enumerate(questions)}
    return {"answers": answers, "items": items}
