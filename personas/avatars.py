"""Deterministic SVG avatars: the persona's initials on a colour derived from its id, no external images.

Initials, not a drawn face: a generated face (hair length, grey hair, build) could contradict the persona's
gender or age, and a face that does not match the profile undermines it. Initials cannot disagree with
anything, and the colour follows the id, so renaming a persona or changing their age keeps their colour.
"""

import hashlib
import unicodedata
from html import escape

# (background, text) pairs; every text colour has at least 7:1 contrast on its background.
_PALETTE = [
    ("#e0e7ff", "#3730a3"),
    ("#fef3c7", "#92400e"),
    ("#dcfce7", "#166534"),
    ("#fce7f3", "#9d174d"),
    ("#e0f2fe", "#075985"),
    ("#ede9fe", "#5b21b6"),
    ("#ffedd5", "#9a3412"),
    ("#ccfbf1", "#115e59"),
    ("#e2e8f0", "#334155"),
    ("#ffe4e6", "#9f1239"),
]
# Honorifics before a name and post-nominals after it are not part of anyone's initials.
_TITLES = frozenset(
    [
        "dr",
        "doctor",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "prof",
        "professor",
        "sir",
        "dame",
        "lord",
        "lady",
        "rev",
        "revd",
        "fr",
        "capt",
        "col",
        "hon",
        "mme",
        "mlle",
        "herr",
        "frau",
        "sra",
        "srta",
    ]
)
_SUFFIXES = frozenset(
    ["jr", "jnr", "sr", "snr", "ii", "iii", "iv", "phd", "md", "dds", "esq", "mba", "obe", "mbe", "cbe", "kc", "qc"]
)


def _initial(word: str) -> str:
    return next((char for char in word if char.isalnum()), "")


def _bare(word: str) -> str:
    return word.strip(".,;:()[]{}\"'“”‘’").lower()


def persona_initials(name: str) -> str:
    """Up to two letters: the first and last names' (``"Dr. Sarah Jones"`` → ``"SJ"``), "?" when there are none."""
    words = [word for word in unicodedata.normalize("NFC", name or "").replace(",", " ").split() if _initial(word)]
    while len(words) > 1 and _bare(words[0]) in _TITLES:
        words.pop(0)
    while len(words) > 1 and _bare(words[-1]) in _SUFFIXES:
        words.pop()
    if not words:
        return "?"
    letters = _initial(words[0]) + (_initial(words[-1]) if len(words) > 1 else "")
    return letters.upper()


def avatar_colours(key: object) -> tuple[str, str]:
    """The (background, text) colour pair for ``key`` (the persona's id): stable across renames and edits."""
    digest = hashlib.sha256(str(key).encode()).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def avatar_svg(name: str, *, key: object, size: int = 96, title: str = "") -> str:
    background, ink = avatar_colours(key)
    initials = persona_initials(name)
    font_size = 40 if len(initials) > 1 else 46
    label = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96" width="{size}" height="{size}" role="img" '
        f'class="avatar">{label}<circle cx="48" cy="48" r="48" fill="{background}"/>'
        f'<text x="48" y="50" text-anchor="middle" dominant-baseline="central" fill="{ink}" '
        f'font-family="system-ui, -apple-system, &quot;Segoe UI&quot;, Roboto, sans-serif" font-size="{font_size}" '
        f'font-weight="600" aria-hidden="true">{escape(initials)}</text></svg>'
    )
