"""chunk_for_prompt: extracted text cut into prompt-sized pieces at paragraph, line, sentence or word breaks."""

from __future__ import annotations

import re


def chunk_for_prompt(text: str, *, max_chars: int) -> list[str]:
    """Split text into pieces of at most ``max_chars``, breaking between paragraphs (blank lines).

    Paragraphs are packed greedily, joined by a blank line. A paragraph longer than ``max_chars``
    is split at line breaks, then sentence ends, then spaces, and only as a last resort mid-word.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        pieces.extend(_split_long(paragraph, max_chars))

    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece
        elif len(current) + 2 + len(piece) <= max_chars:
            current = f"{current}\n\n{piece}"
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _split_long(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    for pattern, joiner in ((r"\n", "\n"), (r"(?<=[.!?…])\s+", " "), (r"\s+", " ")):
        units = [u for u in re.split(pattern, text) if u.strip()]
        if len(units) > 1:
            out: list[str] = []
            current = ""
            for unit in units:
                for part in _split_long(unit.strip(), max_chars):
                    if not current:
                        current = part
                    elif len(current) + len(joiner) + len(part) <= max_chars:
                        current = f"{current}{joiner}{part}"
                    else:
                        out.append(current)
                        current = part
            if current:
                out.append(current)
            return out
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
