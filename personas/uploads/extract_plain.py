"""How a plain-text (.txt) or Markdown (.md) upload is read: decoded as checked by text_encoding, control
characters dropped, capped at MAX_TEXT_CHARS. Markdown is kept as written."""

from __future__ import annotations

from personas.uploads.common import (
    MAX_TEXT_CHARS,
    ExtractedText,
    cap,
    chars_warning,
    clean_text,
    display_name,
    reject,
    text_stream,
)
from personas.uploads.encodings import text_encoding


def plain_text(uploaded_file, kind: str) -> ExtractedText:
    encoding = text_encoding(uploaded_file, kind)
    stream = text_stream(uploaded_file, encoding)
    raw = stream.read(MAX_TEXT_CHARS + 2000)
    more = bool(stream.read(1))
    text = clean_text(raw).strip()
    if not text:
        raise reject(
            uploaded_file,
            "no_text",
            f"{display_name(uploaded_file)} has no text in it. Check you uploaded the right file.",
        )
    text, truncated = cap(text, MAX_TEXT_CHARS)
    truncated = truncated or more
    return ExtractedText(
        text=text, truncated=truncated, warnings=[chars_warning(uploaded_file, MAX_TEXT_CHARS)] if truncated else []
    )
