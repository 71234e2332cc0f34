"""What personas are called by: given names without honorifics, and names as matching sees them."""

import functools
import unicodedata

# Honorifics are not what anyone is called by: "Dr. Sarah Jones" is @Sarah.
HONORIFICS = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame", "rev", "fr", "lord", "lady", "capt"}


@functools.lru_cache(maxsize=4096)  # the same few names, folded for every mention and handle of every message
def fold(text: str) -> str:
    """A name as matching sees it: no case, no accents, no punctuation ("Zoë O'Brien" → "zoeobrien")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isalnum()).casefold()


def name_words(name: str) -> list[str]:
    return [word for word in name.split() if fold(word)]


def given_name(name: str) -> str:
    """What the persona is called by: the first word of the name that is not a title."""
    words = name_words(name)
    for word in words:
        if fold(word) not in HONORIFICS:
            return word.strip(".,")
    return (words[0] if words else name).strip(".,")
