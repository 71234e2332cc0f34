"""What every upload module shares: the kinds, the text cap, the rejection and result types, and the
small helpers for naming a file in a message, reading its first bytes and streaming it as text."""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field

from cohorta.errors import ApplicationError

MB = 1024 * 1024

ALL_KINDS = frozenset({"pdf", "docx", "txt", "md", "csv", "jpeg", "png", "webp"})
TEXT_KINDS = frozenset({"txt", "md", "csv"})
IMAGE_KINDS = frozenset({"jpeg", "png", "webp"})

MAX_TEXT_CHARS = 400_000  # characters of extracted text kept from any one file

HEAD_BYTES = 8192
CHUNK_BYTES = 256 * 1024

KIND_DESCRIPTION = {
    "pdf": "a PDF",
    "docx": "a Word document (.docx)",
    "txt": "a text file",
    "md": "a Markdown file",
    "csv": "a CSV file",
    "jpeg": "a JPEG image",
    "png": "a PNG image",
    "webp": "a WebP image",
}

CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class UploadRejected(ApplicationError):
    """An upload we will not use, with a message that says why and what to do next."""

    status_code = 400
    code = "upload_rejected"

    def __init__(self, message: str, *, filename: str | None = None, reason: str | None = None, **kwargs) -> None:
        extra = dict(kwargs.pop("extra", None) or {})
        if filename is not None:
            extra.setdefault("filename", filename)
        if reason is not None:
            extra.setdefault("reason", reason)
        super().__init__(message, extra=extra, **kwargs)


@dataclass
class ExtractedText:
    """Text taken from a document.

    ``pages``: pages in the PDF (None for other kinds). ``truncated``: something was left out
    (pages, characters or CSV rows), always explained in ``warnings``. ``segments``: CSV rows as
    dicts with a ``label`` key (None for other kinds).
    """

    text: str
    pages: int | None = None
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    segments: list[dict] | None = None


def display_name(uploaded_file) -> str:
    """The file's own name in curly quotes: no directories, no control characters, at most 80 characters."""
    raw = str(getattr(uploaded_file, "name", "") or "")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip() or "upload"
    if len(base) > 80:
        base = base[:77] + "…"
    return f"“{base}”"


def _plain_name(uploaded_file) -> str:
    return display_name(uploaded_file)[1:-1]


def reject(uploaded_file, reason: str, message: str) -> UploadRejected:
    return UploadRejected(message, filename=_plain_name(uploaded_file), reason=reason)


def read_head(uploaded_file, nbytes: int = HEAD_BYTES) -> bytes:
    uploaded_file.seek(0)
    head = uploaded_file.read(nbytes) or b""
    uploaded_file.seek(0)
    return bytes(head)


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS_RE.sub("", text)


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most ``limit`` characters, at a whitespace boundary when one is near."""
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = max(cut.rfind("\n"), cut.rfind(" "))
    if space > limit - 2000:
        cut = cut[:space]
    return cut.rstrip(), True


def chars_warning(uploaded_file, limit: int) -> str:
    return (
        f"Only the first {limit:,} characters of {display_name(uploaded_file)} were used; "
        "the rest was ignored. Upload the most relevant part on its own to use it."
    )


class _RawReader(io.RawIOBase):
    """A read-only raw stream over an uploaded file, so io.TextIOWrapper can stream-decode it.

    Closing it never closes the upload.
    """

    def __init__(self, uploaded_file) -> None:
        self._file = uploaded_file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def text_stream(uploaded_file, encoding: str) -> io.TextIOWrapper:
    uploaded_file.seek(0)
    return io.TextIOWrapper(
        io.BufferedReader(_RawReader(uploaded_file), buffer_size=CHUNK_BYTES), encoding=encoding, newline=""
    )
