"""Which encoding a TXT, MD or CSV upload is read with, checked over the whole file before anything reads it."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

from personas.uploads.common import (
    CHUNK_BYTES,
    CONTROL_CHARS_RE,
    HEAD_BYTES,
    UploadRejected,
    display_name,
    read_head,
    reject,
)
from personas.uploads.sniffing import known_signature


def _iter_chunks(uploaded_file) -> Iterator[bytes]:
    uploaded_file.seek(0)
    while True:
        chunk = uploaded_file.read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def _decodes_cleanly(uploaded_file, encoding: str, kind: str) -> bool:
    """Stream-decode the whole file; False on a decoding error. Rejects NULs and control-character soup."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    eight_bit = encoding not in ("utf-16", "utf-32")
    sample: list[str] = []
    sample_len = 0
    for chunk in _iter_chunks(uploaded_file):
        if eight_bit and b"\x00" in chunk:
            raise _not_text(uploaded_file, kind, "it contains binary data")
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            return False
        if not eight_bit and "\x00" in text:
            raise _not_text(uploaded_file, kind, "it contains binary data")
        if sample_len < HEAD_BYTES:
            sample.append(text[: HEAD_BYTES - sample_len])
            sample_len += len(sample[-1])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    head = "".join(sample)
    controls = len(CONTROL_CHARS_RE.findall(head))
    if head and controls > max(8, len(head) // 20):
        raise _not_text(uploaded_file, kind, "it contains binary data")
    return True


def _not_text(uploaded_file, kind: str, what: str) -> UploadRejected:
    target = {"txt": "plain-text (.txt)", "md": "Markdown (.md)", "csv": "CSV"}[kind]
    return reject(
        uploaded_file,
        "not_text",
        f"{display_name(uploaded_file)} is not a text file: {what}. Save it as a {target} file and upload that.",
    )


def text_encoding(uploaded_file, kind: str) -> str:
    """The encoding to read a TXT/MD/CSV upload with, after checking the whole file decodes.

    UTF-8 (with or without a BOM) for every text kind; UTF-16/UTF-32 when the file starts with their
    BOM (Excel's "Unicode text"); CSV alone falls back to Windows-1252, which is what Excel on Western
    Windows writes for "CSV (Comma delimited)". Latin-1 is never used: it decodes any bytes at all.
    """
    head = read_head(uploaded_file)
    bom = _bom_encoding(head)
    if bom is None:
        signature = known_signature(head)
        if signature:
            raise _not_text(uploaded_file, kind, f"its contents look like {signature}")
    candidates = [bom] if bom else ["utf-8-sig"] + (["cp1252"] if kind == "csv" else [])
    try:
        for encoding in candidates:
            if _decodes_cleanly(uploaded_file, encoding, kind):
                return encoding
    finally:
        uploaded_file.seek(0)
    name = display_name(uploaded_file)
    if kind == "csv":
        message = (
            f"{name} can't be read: it isn't encoded as UTF-8 or Windows-1252. "
            "Export it again as “CSV UTF-8” and upload that."
        )
    else:
        message = (
            f"{name} can't be read: it isn't encoded as UTF-8. "
            "Save it again with UTF-8 encoding (in most editors: Save As → Encoding → UTF-8) and upload that."
        )
    raise reject(uploaded_file, "encoding", message)
