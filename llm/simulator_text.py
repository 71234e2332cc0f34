"""Reading a prompt and writing short English for the offline simulator (see ``llm.simulator``).

The simulator has no model: it reads what it needs from the prompt templates' fixed wording (the brief's
limits, the guide position, the persona's profile) and writes from word banks. Everything here is pure
string work, deterministic and quick."""

import hashlib
import re

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
STOPWORDS = frozenset(
    """a an the and or but of to in on at for with from by about as into than then that this these those there
    their they them it its is are was were be been being have has had do does did will would could should can
    may might must shall we you your our us i me my he she his her who whom which what when where why how
    whether if not no so very more most less least much many some any all each every both either neither own
    other such only also just too up out over under again further once here same few nor off per via
    understand find learn explore discover test assess evaluate identify see gauge measure know establish
    determine investigate uncover get sense make makes made want wants people person consumers customers
    households users shoppers buyers participants respondents uk us usa well really""".split()  # noqa: SIM905
)


def message_text(message: dict) -> str:
    """The text of a chat message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def user_prompt(messages: list[dict]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def system_prompt(messages: list[dict]) -> str:
    return next((message_text(m) for m in messages if m.get("role") == "system"), "")


def image_url(messages: list[dict]) -> str | None:
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url")
                    if isinstance(url, str):
                        return url
    return None


def line_after(prompt: str, label: str) -> str:
    """What follows ``label`` on its line ("AUDIENCE: busy parents" → "busy parents"), or ""."""
    match = re.search(rf"^{re.escape(label)}\s*(.*)$", prompt, re.M)
    return match.group(1).strip() if match else ""


def block_after(prompt: str, heading: str) -> str:
    """The lines under a heading line (which starts with ``heading``) up to the next blank line."""
    match = re.search(rf"^{re.escape(heading)}[^\n]*\n(.*?)(?:\n\s*\n|\Z)", prompt, re.M | re.S)
    return match.group(1).strip() if match else ""


def stable_int(*parts: object) -> int:
    """A number from ``parts`` that is the same on every machine and run (``hash()`` is salted)."""
    return int(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:12], 16)


def content_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "") if len(w) > 2 and w.lower() not in STOPWORDS]


def key_phrase(text: str) -> str:
    """The longest run (up to three) of content words in ``text``: "weekly grocery deliveries"."""
    best: list[str] = []
    run: list[str] = []
    for token in re.findall(r"[A-Za-z][A-Za-z'-]*|[^A-Za-z\s]", text or ""):
        if len(token) > 2 and token.isalpha() and token.lower() not in STOPWORDS:
            run.append(token.lower())
            if len(run[-3:]) > len(best):
                best = run[-3:]
        else:
            run = []
    return " ".join(best)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentence(text: str) -> str:
    """``text`` with a capital and a full stop (or its own ? or !)."""
    text = " ".join(text.split())
    if not text:
        return ""
    return cap(text) if text[-1] in ".?!" else cap(text) + "."


def join_list(items: list[str]) -> str:
    items = [item for item in items if item]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def first_name(name: str) -> str:
    """The given name of "Dr. Sarah Jones" or "Tom Reed"."""
    words = [w for w in (name or "").split() if w.rstrip(".").lower() not in {"dr", "mr", "mrs", "ms", "prof"}]
    return words[0] if words else (name or "").strip()


def fit(text: str, node: dict | None) -> str:
    """``text`` cut at a word to the schema node's ``maxLength`` (and padded to its ``minLength``)."""
    node = node or {}
    limit = node.get("maxLength")
    if isinstance(limit, int) and len(text) > limit:
        cut = text[: max(0, limit - 1)].rsplit(" ", 1)[0].rstrip(" ,;:–—-")
        text = (cut + "…") if cut and limit > 1 else text[:limit]
    low = node.get("minLength")
    if isinstance(low, int) and len(text) < low:
        text = text.ljust(low, ".")
    return text


_THIRD = [
    (r"\bthemselves\b", "yourselves"),
    (r"\bthem\b", "you"),
    (r"\btheir\b", "your"),
    (r"\btheirs\b", "yours"),
    (r"\bthey\b", "you"),
    (r"\bthey're\b", "you're"),
]


def to_second_person(text: str) -> str:
    """A research objective's "what would make them switch" → "what would make you switch"."""
    for pattern, replacement in _THIRD:
        text = re.sub(pattern, replacement, text, flags=re.I)
    return text


_YOU = [
    (r"\byourself\b", "myself"),
    (r"\byours\b", "mine"),
    (r"\byour\b", "my"),
    (r"\byou'd\b", "I'd"),
    (r"\byou're\b", "I'm"),
    (r"\byou've\b", "I've"),
    (r"\byou\b", "me"),
]


def to_first_person(text: str) -> str:
    """A question's "your weekly shop" → "my weekly shop" (object "you" → "me")."""
    for pattern, replacement in _YOU:
        text = re.sub(pattern, replacement, text, flags=re.I)
    return text


_IRREGULAR = {"is": "am", "has": "have", "does": "do", "goes": "go", "was": "was"}


def _base_verb(word: str) -> str:
    lower = word.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    if lower.endswith("ies") and len(lower) > 4:
        return lower[:-3] + "y"
    if re.search(r"(ches|shes|sses|xes|zes|oes)$", lower):
        return lower[:-2]
    if lower.endswith("s") and not lower.endswith("ss"):
        return lower[:-1]
    return lower


_ADVERBS = frozenset(
    re.split(
        r"\s+",
        "rarely always often usually sometimes never mostly mainly only also still happily generally typically "
        "occasionally",
    )
)
_MODAL = {"will": "will", "would": "would", "can": "can", "could": "could", "might": "might", "may": "may"}
_MODAL |= {"should": "should", "must": "must", "doesn't": "don't", "does": "do", "did": "did", "won't": "won't"}


def said_by_me(text: str, name: str = "") -> str:
    """A third-person profile sentence in the person's own voice: "Compares prices on two apps" or
    "Priya compares prices…" → "I compare prices…"; "Loyal to what works" → "I'm loyal to what works";
    "her/his/their" → "my"."""
    text = " ".join((text or "").split())
    first = first_name(name)
    subject = rf"{re.escape(first)}|she|he|they" if first else "she|he|they"
    text = re.sub(rf"^(?:{subject})\s+", "", text, flags=re.I)
    words = text.split(" ")
    if not words[0]:
        return ""
    head = words[0].lower()
    if head in _ADVERBS and len(words) > 1:
        words = [head, _base_verb(words[1]), *words[2:]]
    elif head in _MODAL:
        words = [_MODAL[head], *words[1:]]
    elif head.endswith("s") and not head.endswith("ss") and len(head) > 3:
        words = [_base_verb(head), *words[1:]]
    else:
        words = ["am", head, *words[1:]]
    rest = " ".join(words[1:])
    rest = re.sub(r"\b(her|his|their)\b", "my", rest)
    rest = re.sub(r"\b(she|he|they)\b", "I", rest)
    rest = re.sub(r"\b(herself|himself|themselves)\b", "myself", rest)
    rest = re.sub(r"([;:]) ([a-z]+s)\b(?= )", lambda m: f"{m.group(1)} I {_base_verb(m.group(2))}", rest)
    verbs = r"reads|asks|compares|buys|waits|checks|sticks|keeps|uses|avoids|plans|pays|steers|drops|manages|then"
    rest = re.sub(rf"\b(and|or|then) ({verbs})\b", lambda m: f"{m.group(1)} {_base_verb(m.group(2))}", rest)
    return ("I'm " if words[0] == "am" else f"I {words[0]} ") + rest


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(?:\s|$)", (text or "").strip())
    return (match.group(1) if match else (text or "").strip()).strip()


MONEY = re.compile(
    r"[£$€]\s?\d[\d,]*(?:\.\d{1,2})?(?:\s?(?:a|per|/)\s?(?:week|month|year|box|pouch|bottle|kit|pack|meal))?"
)


def prices_in(text: str) -> list[str]:
    seen: list[str] = []
    for match in MONEY.finditer(text or ""):
        value = match.group(0).strip()
        if value not in seen:
            seen.append(value)
    return seen
