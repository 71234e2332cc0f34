"""Validation and text extraction for user uploads (grounding documents, CSVs, images).

Pure functions over a Django ``UploadedFile``: no models, no database, nothing written to disk.
Every failure the user can fix is an ``UploadRejected`` (HTTP 400, code "upload_rejected") whose
message names the file (never a server path), says what is wrong and what to do next; ``extra``
carries ``{"filename": ..., "reason": ...}`` for clients that want to branch on the cause.

Reasons: empty, too_large, file_type, content_mismatch, not_text, encoding, encrypted, damaged,
too_complex, compressed_bomb, not_docx, no_text, no_rows, image_too_large.

Extracted text is data, never instructions: nothing here interprets or filters what a document says.
The caller is responsible for quoting it to the model as untrusted material.
"""

from __future__ import annotations

import base64
import codecs
import csv
import io
import itertools
import logging
import math
import os
import re
import struct
import time
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_KINDS",
    "ExtractedText",
    "UploadRejected",
    "chunk_for_prompt",
    "extract_text",
    "image_data_url",
    "sniff_kind",
    "validate_upload",
]

MB = 1024 * 1024

ALL_KINDS = frozenset({"pdf", "docx", "txt", "md", "csv", "jpeg", "png", "webp"})
TEXT_KINDS = frozenset({"txt", "md", "csv"})
IMAGE_KINDS = frozenset({"jpeg", "png", "webp"})

# --- limits (module constants so tests and callers can see them) ----------------------------------
MAX_TEXT_CHARS = 400_000  # characters of extracted text kept from any one file
PDF_MAX_PAGES = 300
PDF_TIME_BUDGET_SECONDS = 30.0  # stop extracting (with a warning) if a PDF is pathologically slow
DOCX_MAX_UNCOMPRESSED_BYTES = 50 * MB
DOCX_MAX_COMPRESSION_RATIO = 100
DOCX_RATIO_MIN_BYTES = 1 * MB  # the ratio rule applies to members that unpack to more than this
DOCX_MAX_MEMBERS = 1000
CSV_COUNT_BOUND = 1_000_000  # stop counting rows beyond the cap here
CSV_MAX_COLUMNS = 200
CSV_SNIFF_CHARS = 64 * 1024
IMAGE_MAX_PIXELS = 40_000_000
IMAGE_MAX_SIDE = 1568
JPEG_QUALITY = 85

_HEAD_BYTES = 8192
_CHUNK_BYTES = 256 * 1024

_EXTENSIONS = {
    "pdf": "pdf",
    "docx": "docx",
    "txt": "txt",
    "md": "md",
    "markdown": "md",
    "csv": "csv",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "png": "png",
    "webp": "webp",
}
_KIND_ORDER = ("pdf", "docx", "txt", "md", "csv", "jpeg", "png", "webp")
_KIND_SHORT = {
    "pdf": "PDF",
    "docx": "Word (.docx)",
    "txt": "text (.txt)",
    "md": "Markdown (.md)",
    "csv": "CSV",
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WebP",
}
_KIND_DESCRIPTION = {
    "pdf": "a PDF",
    "docx": "a Word document (.docx)",
    "txt": "a text file",
    "md": "a Markdown file",
    "csv": "a CSV file",
    "jpeg": "a JPEG image",
    "png": "a PNG image",
    "webp": "a WebP image",
}
# Extensions people commonly try, with what to do instead: (description, kind to convert to, how).
_EXTENSION_HINTS = {
    "doc": ("an old-style Word document (.doc)", "docx", "Open it in Word, save it as .docx and upload that."),
    "rtf": ("a Rich Text document", "docx", "Open it in Word, save it as .docx and upload that."),
    "odt": ("an OpenDocument text file", "docx", "Save it as .docx (Word) and upload that."),
    "pages": ("a Pages document", "pdf", "Export it as PDF and upload that."),
    "pptx": ("a PowerPoint presentation", "pdf", "Export it as PDF and upload that."),
    "ppt": ("a PowerPoint presentation", "pdf", "Export it as PDF and upload that."),
    "key": ("a Keynote presentation", "pdf", "Export it as PDF and upload that."),
    "xlsx": ("a spreadsheet", "csv", "Export it as “CSV UTF-8” and upload the CSV."),
    "xls": ("a spreadsheet", "csv", "Export it as “CSV UTF-8” and upload the CSV."),
    "ods": ("a spreadsheet", "csv", "Export it as CSV and upload the CSV."),
    "numbers": ("a Numbers spreadsheet", "csv", "Export it as CSV and upload the CSV."),
    "tsv": ("a tab-separated file", "csv", "Rename it to .csv and upload it again."),
    "heic": ("an HEIC photo", "jpeg", "Convert it to JPEG or PNG and upload that."),
    "heif": ("an HEIF photo", "jpeg", "Convert it to JPEG or PNG and upload that."),
    "gif": ("a GIF image", "png", "Convert it to PNG or JPEG and upload that."),
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Signatures that are never text (each starts with a byte no text file starts with).
_BINARY_SIGNATURES = (
    (_OLE_MAGIC, "an old-style Office file (.doc/.xls/.ppt) or a password-protected Office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "a program"),
    (b"PK\x05\x06", "an empty ZIP archive"),
)
_SNIFFED_DESCRIPTION = {
    "pdf": "a PDF",
    "zip": "a ZIP archive",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "webp": "a WebP image",
    "gif": "a GIF image",
}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}

_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LABEL_COLUMNS = ("label", "segment", "segment_name", "persona", "persona_name", "name")


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


# --- sniffing ---------------------------------------------------------------------------------------


def sniff_kind(head: bytes) -> str | None:
    """The container type announced by a file's first bytes, or None (plain text or unknown)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def _binary_signature(head: bytes) -> str | None:
    """Describe a known binary format that sniff_kind does not name, or None."""
    for magic, description in _BINARY_SIGNATURES:
        if head.startswith(magic):
            return description
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "an HEIC/HEIF photo"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "an MP4/MOV video"
    return None


def _describe_content(head: bytes) -> str:
    kind = sniff_kind(head)
    if kind:
        return _SNIFFED_DESCRIPTION[kind]
    binary = _binary_signature(head)
    if binary:
        return binary
    if not head.strip():
        return "blank space"
    if b"\x00" in head:
        return "binary data of an unknown type"
    return "plain text"


# --- helpers ----------------------------------------------------------------------------------------


def _display_name(uploaded_file) -> str:
    """The file's own name in curly quotes: no directories, no control characters, at most 80 characters."""
    raw = str(getattr(uploaded_file, "name", "") or "")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip() or "upload"
    if len(base) > 80:
        base = base[:77] + "…"
    return f"“{base}”"


def _plain_name(uploaded_file) -> str:
    return _display_name(uploaded_file)[1:-1]


def _extension(uploaded_file) -> str:
    base = str(getattr(uploaded_file, "name", "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[1].lower().lstrip(".").strip()


def _reject(uploaded_file, reason: str, message: str) -> UploadRejected:
    return UploadRejected(message, filename=_plain_name(uploaded_file), reason=reason)


def _size_of(uploaded_file) -> int:
    size = getattr(uploaded_file, "size", None)
    if size is None:
        uploaded_file.seek(0, os.SEEK_END)
        size = uploaded_file.tell()
        uploaded_file.seek(0)
    return int(size)


def _mb(nbytes: int) -> str:
    """Megabytes rounded up to one decimal, so "over the limit" never prints as equal to it."""
    value = math.ceil(nbytes / MB * 10) / 10
    return f"{value:g}"


def _accepted_list(allowed) -> str:
    names = [_KIND_SHORT[k] for k in _KIND_ORDER if k in allowed]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _read_head(uploaded_file, nbytes: int = _HEAD_BYTES) -> bytes:
    uploaded_file.seek(0)
    head = uploaded_file.read(nbytes) or b""
    uploaded_file.seek(0)
    return bytes(head)


def _iter_chunks(uploaded_file) -> Iterator[bytes]:
    uploaded_file.seek(0)
    while True:
        chunk = uploaded_file.read(_CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_CHARS_RE.sub("", text)


def _cap(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most ``limit`` characters, at a whitespace boundary when one is near."""
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = max(cut.rfind("\n"), cut.rfind(" "))
    if space > limit - 2000:
        cut = cut[:space]
    return cut.rstrip(), True


def _chars_warning(uploaded_file) -> str:
    return (
        f"Only the first {MAX_TEXT_CHARS:,} characters of {_display_name(uploaded_file)} were used; "
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


def _text_stream(uploaded_file, encoding: str) -> io.TextIOWrapper:
    uploaded_file.seek(0)
    return io.TextIOWrapper(
        io.BufferedReader(_RawReader(uploaded_file), buffer_size=_CHUNK_BYTES), encoding=encoding, newline=""
    )


# --- text encodings ---------------------------------------------------------------------------------


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
        if sample_len < _HEAD_BYTES:
            sample.append(text[: _HEAD_BYTES - sample_len])
            sample_len += len(sample[-1])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    head = "".join(sample)
    controls = len(_CONTROL_CHARS_RE.findall(head))
    if head and controls > max(8, len(head) // 20):
        raise _not_text(uploaded_file, kind, "it contains binary data")
    return True


def _not_text(uploaded_file, kind: str, what: str) -> UploadRejected:
    target = {"txt": "plain-text (.txt)", "md": "Markdown (.md)", "csv": "CSV"}[kind]
    return _reject(
        uploaded_file,
        "not_text",
        f"{_display_name(uploaded_file)} is not a text file: {what}. Save it as a {target} file and upload that.",
    )


def _text_encoding(uploaded_file, kind: str) -> str:
    """The encoding to read a TXT/MD/CSV upload with, after checking the whole file decodes.

    UTF-8 (with or without a BOM) for every text kind; UTF-16/UTF-32 when the file starts with their
    BOM (Excel's "Unicode text"); CSV alone falls back to Windows-1252, which is what Excel on Western
    Windows writes for "CSV (Comma delimited)". Latin-1 is never used: it decodes any bytes at all.
    """
    head = _read_head(uploaded_file)
    bom = _bom_encoding(head)
    if bom is None:
        sniffed = sniff_kind(head)
        signature = _SNIFFED_DESCRIPTION[sniffed] if sniffed else _binary_signature(head)
        if signature:
            raise _not_text(uploaded_file, kind, f"its contents look like {signature}")
    candidates = [bom] if bom else ["utf-8-sig"] + (["cp1252"] if kind == "csv" else [])
    try:
        for encoding in candidates:
            if _decodes_cleanly(uploaded_file, encoding, kind):
                return encoding
    finally:
        uploaded_file.seek(0)
    name = _display_name(uploaded_file)
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
    raise _reject(uploaded_file, "encoding", message)


# --- validation -------------------------------------------------------------------------------------


def validate_upload(uploaded_file, *, allowed: set[str]) -> str:
    """Check an upload and return its canonical kind (one of ``allowed``).

    In order: size (> 0 and ≤ settings.UPLOAD_MAX_MB); extension allowed (case-insensitive, .jpg/.jpeg
    → "jpeg", .markdown → "md"); contents agree with the extension: PDF starts with ``%PDF-``; DOCX is
    a zip that passes the bomb checks and holds ``word/document.xml`` and ``[Content_Types].xml``;
    PNG/JPEG/WebP carry their signature (a PNG/JPEG/WebP under another image extension is accepted and
    its real kind returned, if that kind is allowed); TXT/MD/CSV decode (see ``_text_encoding``), with
    no NUL bytes and no known binary signature. PDFs are opened, and images decoded, only by
    ``extract_text`` / ``image_data_url``. Leaves the file position at 0.
    """
    allowed = set(allowed)
    if not allowed or not allowed <= ALL_KINDS:
        raise ValueError(f"allowed must be a non-empty subset of {sorted(ALL_KINDS)}, not {sorted(allowed)}")
    try:
        return _validate(uploaded_file, allowed)
    finally:
        uploaded_file.seek(0)


def _validate(uploaded_file, allowed: set[str]) -> str:
    name = _display_name(uploaded_file)
    size = _size_of(uploaded_file)
    if size <= 0:
        raise _reject(uploaded_file, "empty", f"{name} is an empty file (0 bytes). Check the file and upload it again.")
    limit_mb = settings.UPLOAD_MAX_MB
    if size > limit_mb * MB:
        raise _reject(
            uploaded_file,
            "too_large",
            f"{name} is {_mb(size)} MB, which is over the {limit_mb} MB limit. "
            "Upload a smaller file, for example only the relevant pages or rows.",
        )

    ext = _extension(uploaded_file)
    kind = _EXTENSIONS.get(ext)
    accepted = _accepted_list(allowed)
    if kind is None or kind not in allowed:
        hint = _EXTENSION_HINTS.get(ext)
        if hint and hint[1] in allowed:
            message = f"{name} is {hint[0]}, which can't be used here. {hint[2]}"
        elif kind is not None:
            message = f"{name} is {_KIND_DESCRIPTION[kind]}, which can't be used here. Upload a {accepted} file."
        elif not ext:
            message = f"{name} has no file extension, so its type is unknown. Upload a {accepted} file."
        else:
            message = f"{name} can't be used here: .{ext} files aren't supported. Upload a {accepted} file."
        raise _reject(uploaded_file, "file_type", message)

    head = _read_head(uploaded_file)
    if kind == "pdf":
        if sniff_kind(head) != "pdf":
            raise _mismatch(uploaded_file, head, "is not a PDF", "Upload the original PDF file.")
    elif kind == "docx":
        if head.startswith(_OLE_MAGIC):
            raise _reject(
                uploaded_file,
                "encrypted",
                f"{name} is password-protected, or is an old-style Word file (.doc) renamed to .docx. "
                "Remove the password (or open it in Word and save it as .docx) and upload it again.",
            )
        if sniff_kind(head) != "zip":
            raise _mismatch(
                uploaded_file,
                head,
                "is not a Word document (.docx)",
                "Open it in Word, save it as .docx and upload that.",
            )
        _check_docx_zip(uploaded_file)
    elif kind in IMAGE_KINDS:
        actual = sniff_kind(head)
        if actual != kind:
            if actual in IMAGE_KINDS and actual in allowed:
                return actual  # a renamed image: its real type is what we will decode
            raise _mismatch(
                uploaded_file,
                head,
                f"is not {_KIND_DESCRIPTION[kind]}",
                f"Upload the original image file ({_accepted_list(allowed & IMAGE_KINDS)}).",
            )
    else:
        _text_encoding(uploaded_file, kind)
    return kind


def _mismatch(uploaded_file, head: bytes, what: str, action: str) -> UploadRejected:
    return _reject(
        uploaded_file,
        "content_mismatch",
        f"{_display_name(uploaded_file)} {what}: its contents look like {_describe_content(head)}. {action}",
    )


# --- DOCX -------------------------------------------------------------------------------------------


def _zip_declared_entries(uploaded_file) -> int | None:
    """Entry count from the end-of-central-directory record, read before zipfile builds its index."""
    uploaded_file.seek(0, os.SEEK_END)
    size = uploaded_file.tell()
    tail_len = min(size, 22 + 65535)
    uploaded_file.seek(size - tail_len)
    tail = uploaded_file.read(tail_len)
    uploaded_file.seek(0)
    index = tail.rfind(b"PK\x05\x06")
    if index < 0 or index + 12 > len(tail):
        return None
    return int.from_bytes(tail[index + 10 : index + 12], "little")


def _check_docx_zip(uploaded_file) -> None:
    """Refuse zip bombs and zips that are not Word documents, from the central directory alone.

    Nothing is decompressed here. The declared sizes are enforceable: CPython's zipfile never returns
    more than a member's declared ``file_size`` (and checks its CRC), so python-docx cannot unpack more
    than the total checked here.
    """
    name = _display_name(uploaded_file)
    entries = _zip_declared_entries(uploaded_file)
    if entries is not None and entries > DOCX_MAX_MEMBERS:  # 0xFFFF (zip64) lands here too
        raise _too_many_members(uploaded_file, entries)
    try:
        uploaded_file.seek(0)
        with zipfile.ZipFile(uploaded_file) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        logger.info("Unreadable docx upload: %s", exc)
        raise _reject(
            uploaded_file,
            "damaged",
            f"{name} is damaged: it can't be opened as a Word document. "
            "Open it in Word, save it again and upload the new copy.",
        ) from None
    finally:
        uploaded_file.seek(0)
    if len(infos) > DOCX_MAX_MEMBERS:
        raise _too_many_members(uploaded_file, len(infos))

    total = sum(info.file_size for info in infos)
    suspicious = any(
        info.file_size > DOCX_RATIO_MIN_BYTES
        and info.file_size > DOCX_MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        for info in infos
    )
    if total > DOCX_MAX_UNCOMPRESSED_BYTES or suspicious:
        raise _reject(
            uploaded_file,
            "compressed_bomb",
            f"{name} looks like a compressed bomb (it would unpack to {max(1, round(total / MB))} MB) and was refused. "
            "If it is a genuine document, compress its pictures (in Word: File → Compress Pictures) "
            "and upload it again.",
        )
    if any(info.flag_bits & 0x1 for info in infos):
        raise _reject(
            uploaded_file,
            "encrypted",
            f"{name} is password-protected. Remove the password and upload it again.",
        )

    names = {info.filename for info in infos}
    if "word/document.xml" not in names:
        if "xl/workbook.xml" in names:
            looks_like = "an Excel workbook"
        elif "ppt/presentation.xml" in names:
            looks_like = "a PowerPoint presentation"
        elif "mimetype" in names and "content.xml" in names:
            looks_like = "an OpenDocument file"
        else:
            looks_like = "a ZIP archive of other files"
        raise _reject(
            uploaded_file,
            "not_docx",
            f"{name} is not a Word document (.docx): its contents look like {looks_like}. "
            "Open it in Word, save it as .docx and upload that.",
        )
    if "[Content_Types].xml" not in names:
        raise _reject(
            uploaded_file,
            "damaged",
            f"{name} is damaged: it is missing parts every Word document has. "
            "Open it in Word, save it again and upload the new copy.",
        )


def _too_many_members(uploaded_file, count: int) -> UploadRejected:
    return _reject(
        uploaded_file,
        "compressed_bomb",
        f"{_display_name(uploaded_file)} contains {count:,} files, far more than a Word document has, "
        "and was refused. Open it in Word, save a fresh copy and upload that.",
    )


def _docx_blocks(container, depth: int = 0) -> Iterator[str]:
    """Paragraph and table text in document order; one line per table row, cells joined with " | "."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in container.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text
        elif isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                previous = None
                for cell in row.cells:
                    if cell._tc is previous:  # a horizontally merged cell repeats
                        continue
                    previous = cell._tc
                    if depth < 4:
                        cell_text = " / ".join(t.strip() for t in _docx_blocks(cell, depth + 1) if t.strip())
                    else:
                        cell_text = cell.text.strip().replace("\n", " / ")
                    if cell_text:
                        cells.append(cell_text)
                if cells:
                    yield " | ".join(cells)


def _extract_docx(uploaded_file) -> ExtractedText:
    import docx

    _check_docx_zip(uploaded_file)
    name = _display_name(uploaded_file)
    uploaded_file.seek(0)
    try:
        document = docx.Document(uploaded_file)
        parts: list[str] = []
        length = 0
        for block in _docx_blocks(document):
            parts.append(block)
            length += len(block) + 1
            if length > MAX_TEXT_CHARS + 2000:
                break
    except Exception as exc:  # python-docx/lxml raise many types on malformed packages
        logger.info("Unreadable docx upload: %r", exc)
        raise _reject(
            uploaded_file,
            "damaged",
            f"{name} can't be opened as a Word document: it may be damaged. "
            "Open it in Word, save it again and upload the new copy.",
        ) from None
    text = _clean_text("\n".join(parts)).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if not text:
        raise _reject(
            uploaded_file,
            "no_text",
            f"{name} has no text in it. Check you uploaded the right document, or paste the text into the brief.",
        )
    text, truncated = _cap(text, MAX_TEXT_CHARS)
    return ExtractedText(text=text, truncated=truncated, warnings=[_chars_warning(uploaded_file)] if truncated else [])


# --- PDF --------------------------------------------------------------------------------------------


def _extract_pdf(uploaded_file) -> ExtractedText:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    name = _display_name(uploaded_file)
    damaged = _reject(
        uploaded_file,
        "damaged",
        f"{name} is damaged or incomplete and can't be read. "
        "Open it in a PDF viewer, save or export it again, and upload the new copy.",
    )
    password = _reject(
        uploaded_file,
        "encrypted",
        f"{name} is password-protected. Remove the password and upload it again.",
    )
    too_complex = _reject(
        uploaded_file,
        "too_complex",
        f"{name} is too complex to read safely (it expands to more data than we allow). "
        "Export only the pages you need as a new PDF and upload that.",
    )
    head = _read_head(uploaded_file)
    if sniff_kind(head) != "pdf":
        raise _mismatch(uploaded_file, head, "is not a PDF", "Upload the original PDF file.")

    uploaded_file.seek(0)
    try:
        reader = PdfReader(uploaded_file, strict=False)
        if reader.is_encrypted:
            # Many "encrypted" PDFs only restrict printing/copying and open with an empty user password.
            try:
                if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    raise password
            except UploadRejected:
                raise
            except Exception as exc:  # unsupported cipher, missing crypto backend, malformed /Encrypt
                logger.info("PDF decryption failed: %r", exc)
                raise password from None
        page_count = len(reader.pages)
    except UploadRejected:
        raise
    except FileNotDecryptedError:
        raise password from None
    except LimitReachedError:
        raise too_complex from None
    except Exception as exc:  # pypdf raises many types on malformed input
        logger.info("Unreadable PDF upload: %r", exc)
        raise damaged from None
    if page_count == 0:
        raise damaged

    warnings: list[str] = []
    truncated = False
    parts: list[str] = []
    length = 0
    failed: list[int] = []
    to_read = min(page_count, PDF_MAX_PAGES)
    started = time.monotonic()
    read = 0
    for index in range(to_read):
        if time.monotonic() - started > PDF_TIME_BUDGET_SECONDS:
            truncated = True
            warnings.append(f"{name} took too long to read: only the first {read} of its {page_count} pages were used.")
            break
        try:
            page_text = reader.pages[index].extract_text() or ""
        except FileNotDecryptedError:
            raise password from None
        except Exception as exc:  # one bad page should not lose the rest
            logger.info("PDF page %s unreadable: %r", index + 1, exc)
            failed.append(index + 1)
            page_text = ""
        read += 1
        page_text = _clean_text(page_text).strip()
        if page_text:
            parts.append(page_text)
            length += len(page_text) + 2
        if length > MAX_TEXT_CHARS + 2000:
            break
    if failed and len(failed) == read:
        raise damaged
    if page_count > PDF_MAX_PAGES and read == to_read:
        truncated = True
        warnings.append(
            f"{name} has {page_count} pages: only the first {PDF_MAX_PAGES} were used. "
            "Upload the most relevant pages as a separate PDF to use them."
        )
    if failed:
        pages_list = ", ".join(str(p) for p in failed[:10]) + ("…" if len(failed) > 10 else "")
        warnings.append(f"Some pages of {name} couldn't be read and were skipped (page {pages_list}).")

    text = "\n\n".join(parts).strip()
    if not text:
        raise _reject(
            uploaded_file,
            "no_text",
            f"{name} contains no selectable text; it looks like a scanned document or images only. "
            "Upload a PDF with selectable text (or run OCR on it first), or paste the text into the brief.",
        )
    text, cut = _cap(text, MAX_TEXT_CHARS)
    if cut:
        truncated = True
        warnings.append(_chars_warning(uploaded_file))
    return ExtractedText(text=text, pages=page_count, truncated=truncated, warnings=warnings)


# --- TXT / MD ---------------------------------------------------------------------------------------


def _extract_plain(uploaded_file, kind: str) -> ExtractedText:
    encoding = _text_encoding(uploaded_file, kind)
    stream = _text_stream(uploaded_file, encoding)
    raw = stream.read(MAX_TEXT_CHARS + 2000)
    more = bool(stream.read(1))
    text = _clean_text(raw).strip()
    if not text:
        raise _reject(
            uploaded_file,
            "no_text",
            f"{_display_name(uploaded_file)} has no text in it. Check you uploaded the right file.",
        )
    text, truncated = _cap(text, MAX_TEXT_CHARS)
    truncated = truncated or more
    return ExtractedText(text=text, truncated=truncated, warnings=[_chars_warning(uploaded_file)] if truncated else [])


# --- CSV --------------------------------------------------------------------------------------------


def _guess_delimiter(sample: str, complete: bool) -> str:
    """Comma, semicolon or tab: the one that splits the header into the most columns while the
    following rows have the same count. One column (no delimiter found) reads as comma."""
    best = (False, 1, ",")
    for delimiter in (",", ";", "\t"):
        try:
            rows = list(itertools.islice(filter(any, csv.reader(io.StringIO(sample), delimiter=delimiter)), 31))
        except csv.Error:
            continue
        if len(rows) == 31:
            rows = rows[:30]
        elif not complete and len(rows) > 1:
            rows = rows[:-1]  # the sample ends mid-row
        if not rows:
            continue
        columns = len(rows[0])
        if columns <= 1:
            continue
        body = rows[1:] or rows
        consistent = sum(1 for row in body if len(row) == columns) >= 0.8 * len(body)
        candidate = (consistent, columns, delimiter)
        if candidate[:2] > best[:2]:
            best = candidate
    return best[2]


def _normalise_column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _extract_csv(uploaded_file) -> ExtractedText:
    name = _display_name(uploaded_file)
    encoding = _text_encoding(uploaded_file, "csv")
    warnings: list[str] = []
    if encoding == "cp1252":
        warnings.append(
            f"{name} isn't UTF-8, so it was read as Windows-1252 (Western European). "
            "If accented letters look wrong, export it as “CSV UTF-8” and upload it again."
        )
    sample_stream = _text_stream(uploaded_file, encoding)
    sample = sample_stream.read(CSV_SNIFF_CHARS)
    complete = not sample_stream.read(1)
    delimiter = _guess_delimiter(sample, complete)
    del sample, sample_stream

    max_rows = settings.GROUNDING_CSV_MAX_ROWS
    reader = csv.reader(_text_stream(uploaded_file, encoding), delimiter=delimiter)
    record = 0  # row number as a spreadsheet shows it: the header is row 1
    try:
        header = None
        for row in reader:
            record += 1
            if any(cell.strip() for cell in row):
                header = row
                break
        if header is None:
            raise _reject(
                uploaded_file,
                "no_rows",
                f"{name} has no rows: it is empty. Upload a CSV with a header row and at least one row of data.",
            )

        keys: list[str] = []
        seen: dict[str, int] = {}
        for index, cell in enumerate(header[:CSV_MAX_COLUMNS], start=1):
            key = cell.strip()[:100] or f"column {index}"
            if key in seen:
                seen[key] += 1
                key = f"{key} ({seen[key]})"
            else:
                seen[key] = 1
            keys.append(key)
        if len(header) > CSV_MAX_COLUMNS:
            warnings.append(f"{name} has {len(header)} columns: only the first {CSV_MAX_COLUMNS} were used.")
        normalised = {_normalise_column(key): key for key in reversed(keys)}
        label_key = next((normalised[c] for c in _LABEL_COLUMNS if c in normalised), None)

        segments: list[dict] = []
        lines = ["Columns: " + ", ".join(keys)]
        text_length = len(lines[0])
        text_full = False
        rows_in_text = 0
        more_rows = False
        for row in reader:
            record += 1
            if not any(cell.strip() for cell in row):
                continue
            if len(segments) >= max_rows:
                more_rows = True
                break
            fields: dict[str, str] = {}
            for index, cell in enumerate(row[:CSV_MAX_COLUMNS]):
                value = cell.strip()
                if value:
                    key = keys[index] if index < len(keys) else f"column {index + 1}"
                    fields.setdefault(key, value)
            if not fields:
                continue
            label = (fields.get(label_key) if label_key else None) or f"row {record}"
            segment = {"label": label}
            segment.update((k, v) for k, v in fields.items() if k != "label")
            segments.append(segment)
            if not text_full:
                details = "; ".join(f"{k}: {v}" for k, v in fields.items() if k != label_key)
                line = f"{label} — {details}" if details else label
                if text_length + len(line) + 1 > MAX_TEXT_CHARS:
                    text_full = True
                else:
                    lines.append(line)
                    text_length += len(line) + 1
                    rows_in_text += 1

        total = len(segments)
        bounded = False
        if more_rows:
            total += 1
            for row in reader:
                if total >= CSV_COUNT_BOUND:
                    bounded = True
                    break
                if any(row):
                    total += 1
    except csv.Error as exc:
        raise _reject(
            uploaded_file,
            "damaged",
            f"{name} can't be read as CSV (row {record}: {exc}). "
            "Check the quotes and separators around that row, or export it again, and upload the new copy.",
        ) from None
    finally:
        uploaded_file.seek(0)

    if not segments:
        raise _reject(
            uploaded_file,
            "no_rows",
            f"{name} has no rows: it has a header but no data under it. "
            "Add at least one row of data and upload it again.",
        )
    truncated = False
    if more_rows:
        truncated = True
        of = f"more than {CSV_COUNT_BOUND:,}" if bounded else f"{total:,}"
        warnings.append(
            f"Only the first {max_rows:,} of the {of} rows in {name} were used; the rest were ignored. "
            "Put the most representative rows first, or upload a smaller sample."
        )
    if text_full:
        truncated = True
        warnings.append(
            f"Only the first {rows_in_text:,} rows of {name} fit in the text given to the AI "
            f"({MAX_TEXT_CHARS:,} characters)."
        )
    return ExtractedText(text="\n".join(lines), truncated=truncated, warnings=warnings, segments=segments)


# --- extraction entry point -------------------------------------------------------------------------


def extract_text(uploaded_file, kind: str) -> ExtractedText:
    """Text from a validated upload of ``kind`` ("pdf", "docx", "txt", "md" or "csv").

    Images are not text: ``ValueError`` (use ``image_data_url``). Raises ``UploadRejected`` for
    password-protected or damaged files and files with no usable text. Leaves the file position at 0.
    """
    if kind in IMAGE_KINDS:
        raise ValueError(f"{kind} is an image, not text: use image_data_url()")
    try:
        if kind == "pdf":
            return _extract_pdf(uploaded_file)
        if kind == "docx":
            return _extract_docx(uploaded_file)
        if kind in ("txt", "md"):
            return _extract_plain(uploaded_file, kind)
        if kind == "csv":
            return _extract_csv(uploaded_file)
        raise ValueError(f"Unknown upload kind {kind!r}")
    finally:
        uploaded_file.seek(0)


# --- images -----------------------------------------------------------------------------------------


def image_data_url(uploaded_file, kind: str) -> str:
    """A ``data:`` URL for the vision model: decoded and verified by Pillow, at most IMAGE_MAX_PIXELS
    (40 MP) before resizing, EXIF orientation applied, longest side ≤ IMAGE_MAX_SIDE, re-encoded
    without metadata: PNG when the image has real transparency, otherwise JPEG (quality 85, RGB).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if kind not in IMAGE_KINDS:
        raise ValueError(f"{kind} is not an image kind")
    name = _display_name(uploaded_file)
    limit_bytes = settings.UPLOAD_MAX_MB * MB
    uploaded_file.seek(0)
    try:
        data = uploaded_file.read(limit_bytes + 1)
    finally:
        uploaded_file.seek(0)
    if len(data) > limit_bytes:
        raise _reject(
            uploaded_file,
            "too_large",
            f"{name} is over the {settings.UPLOAD_MAX_MB} MB limit. Upload a smaller image.",
        )

    max_pixels = IMAGE_MAX_PIXELS
    if Image.MAX_IMAGE_PIXELS:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    too_big = _reject(
        uploaded_file,
        "image_too_large",
        f"{name} is too large an image (over {max_pixels / 1_000_000:g} megapixels) and was refused. "
        f"Resize it to at most {IMAGE_MAX_SIDE * 2} pixels on its longest side and upload it again.",
    )
    unreadable = _reject(
        uploaded_file,
        "damaged",
        f"{name} is not a readable image: it is damaged, incomplete or not really {_KIND_DESCRIPTION[kind]}. "
        "Open it in an image viewer, save or export it again, and upload the new copy.",
    )
    formats = ["PNG", "JPEG", "WEBP"]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise too_big
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=formats)
        if image.format == "JPEG":
            image.draft("RGB", (IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))  # decode big JPEGs at a reduced scale
        image.load()
        image = ImageOps.exif_transpose(image) or image
    except UploadRejected:
        raise
    except Image.DecompressionBombError:
        raise too_big from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        logger.info("Unreadable image upload: %r", exc)
        raise unreadable from None

    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if transparent:
        image = image.convert("RGBA")
        alpha_min, _ = image.getchannel("A").getextrema()
        transparent = alpha_min < 255
    image = image.convert("RGBA" if transparent else "RGB")
    image.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE), Image.Resampling.LANCZOS)
    image.info = {}  # no EXIF, ICC, XMP or text chunks carried over

    out = io.BytesIO()
    if transparent:
        image.save(out, format="PNG")
        mime = "image/png"
    else:
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"


# --- prompt chunking --------------------------------------------------------------------------------


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
