"""Validation and text extraction for user uploads (grounding documents, CSVs, images).

Pure functions over a Django ``UploadedFile``: no models, no database, nothing written to disk.
Every failure the user can fix is an ``UploadRejected`` (HTTP 400, code "upload_rejected") whose
message names the file (never a server path), says what is wrong and what to do next; ``extra``
carries ``{"filename": ..., "reason": ...}`` for clients that want to branch on the cause.

Reasons: empty, too_large, file_type, content_mismatch, not_text, encoding, encrypted, damaged,
too_complex, compressed_bomb, not_docx, no_text, no_rows, image_too_large.

Extracted text is data, never instructions: nothing here interprets or filters what a document says.
The caller is responsible for quoting it to the model as untrusted material.

Where things are: ``validation`` (validate_upload), ``sniffing`` (what the first bytes say a file is),
``encodings`` (how a TXT/MD/CSV is decoded), one reader per format (``extract_pdf``, ``extract_docx``,
``extract_plain`` for TXT/MD, ``extract_csv``), ``images`` (image_data_url), ``chunking``
(chunk_for_prompt) and ``common`` (kinds, the text cap, the shared types and helpers). Each format's
limits live next to the code that enforces them.
"""

from __future__ import annotations

from personas.uploads.chunking import chunk_for_prompt
from personas.uploads.common import ALL_KINDS, IMAGE_KINDS, ExtractedText, UploadRejected
from personas.uploads.extract_csv import csv_text
from personas.uploads.extract_docx import docx_text
from personas.uploads.extract_pdf import pdf_text
from personas.uploads.extract_plain import plain_text
from personas.uploads.images import image_data_url
from personas.uploads.sniffing import sniff_kind
from personas.uploads.validation import validate_upload

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


def extract_text(uploaded_file, kind: str) -> ExtractedText:
    """Text from a validated upload of ``kind`` ("pdf", "docx", "txt", "md" or "csv").

    Images are not text: ``ValueError`` (use ``image_data_url``). Raises ``UploadRejected`` for
    password-protected or damaged files and files with no usable text. Leaves the file position at 0.
    """
    if kind in IMAGE_KINDS:
        raise ValueError(f"{kind} is an image, not text: use image_data_url()")
    try:
        if kind == "pdf":
            return pdf_text(uploaded_file)
        if kind == "docx":
            return docx_text(uploaded_file)
        if kind in ("txt", "md"):
            return plain_text(uploaded_file, kind)
        if kind == "csv":
            return csv_text(uploaded_file)
        raise ValueError(f"Unknown upload kind {kind!r}")
    finally:
        uploaded_file.seek(0)
