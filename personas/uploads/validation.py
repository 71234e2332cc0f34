"""validate_upload: size, extension and contents checked against what the caller accepts, before any extraction."""

from __future__ import annotations

import math
import os

from django.conf import settings

from personas.uploads.common import ALL_KINDS, IMAGE_KINDS, KIND_DESCRIPTION, MB, display_name, read_head, reject
from personas.uploads.encodings import text_encoding
from personas.uploads.extract_docx import check_docx_zip
from personas.uploads.sniffing import OLE_MAGIC, content_mismatch, sniff_kind

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


def _extension(uploaded_file) -> str:
    base = str(getattr(uploaded_file, "name", "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[1].lower().lstrip(".").strip()


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


def validate_upload(uploaded_file, *, allowed: set[str]) -> str:
    """Check an upload and return its canonical kind (one of ``allowed``).

    In order: size (> 0 and ≤ settings.UPLOAD_MAX_MB); extension allowed (case-insensitive, .jpg/.jpeg
    → "jpeg", .markdown → "md"); contents agree with the extension: PDF starts with ``%PDF-``; DOCX is
    a zip that passes the bomb checks and holds ``word/document.xml`` and ``[Content_Types].xml``;
    PNG/JPEG/WebP carry their signature (a PNG/JPEG/WebP under another image extension is accepted and
    its real kind returned, if that kind is allowed); TXT/MD/CSV decode (see ``text_encoding``), with
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
    name = display_name(uploaded_file)
    size = _size_of(uploaded_file)
    if size <= 0:
        raise reject(uploaded_file, "empty", f"{name} is an empty file (0 bytes). Check the file and upload it again.")
    limit_mb = settings.UPLOAD_MAX_MB
    if size > limit_mb * MB:
        raise reject(
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
            message = f"{name} is {KIND_DESCRIPTION[kind]}, which can't be used here. Upload a {accepted} file."
        elif not ext:
            message = f"{name} has no file extension, so its type is unknown. Upload a {accepted} file."
        else:
            message = f"{name} can't be used here: .{ext} files aren't supported. Upload a {accepted} file."
        raise reject(uploaded_file, "file_type", message)

    head = read_head(uploaded_file)
    if kind == "pdf":
        if sniff_kind(head) != "pdf":
            raise content_mismatch(uploaded_file, head, "is not a PDF", "Upload the original PDF file.")
    elif kind == "docx":
        if head.startswith(OLE_MAGIC):
            raise reject(
                uploaded_file,
                "encrypted",
                f"{name} is password-protected, or is an old-style Word file (.doc) renamed to .docx. "
                "Remove the password (or open it in Word and save it as .docx) and upload it again.",
            )
        if sniff_kind(head) != "zip":
            raise content_mismatch(
                uploaded_file,
                head,
                "is not a Word document (.docx)",
                "Open it in Word, save it as .docx and upload that.",
            )
        check_docx_zip(uploaded_file)
    elif kind in IMAGE_KINDS:
        actual = sniff_kind(head)
        if actual != kind:
            if actual in IMAGE_KINDS and actual in allowed:
                return actual  # a renamed image: its real type is what we will decode
            raise content_mismatch(
                uploaded_file,
                head,
                f"is not {KIND_DESCRIPTION[kind]}",
                f"Upload the original image file ({_accepted_list(allowed & IMAGE_KINDS)}).",
            )
    else:
        text_encoding(uploaded_file, kind)
    return kind
