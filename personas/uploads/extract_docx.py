"""How a Word document (.docx) is read: zip-bomb and structure checks on the central directory alone
(also run by validate_upload), then paragraphs and tables in document order."""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterator

from personas.uploads.common import (
    MAX_TEXT_CHARS,
    MB,
    ExtractedText,
    UploadRejected,
    cap,
    chars_warning,
    clean_text,
    display_name,
    reject,
)

logger = logging.getLogger(__name__)

DOCX_MAX_UNCOMPRESSED_BYTES = 50 * MB
DOCX_MAX_COMPRESSION_RATIO = 100
DOCX_RATIO_MIN_BYTES = 1 * MB  # the ratio rule applies to members that unpack to more than this
DOCX_MAX_MEMBERS = 1000


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


def check_docx_zip(uploaded_file) -> None:
    """Refuse zip bombs and zips that are not Word documents, from the central directory alone.

    Nothing is decompressed here. The declared sizes are enforceable: CPython's zipfile never returns
    more than a member's declared ``file_size`` (and checks its CRC), so python-docx cannot unpack more
    than the total checked here.
    """
    name = display_name(uploaded_file)
    entries = _zip_declared_entries(uploaded_file)
    if entries is not None and entries > DOCX_MAX_MEMBERS:  # 0xFFFF (zip64) lands here too
        raise _too_many_members(uploaded_file, entries)
    try:
        uploaded_file.seek(0)
        with zipfile.ZipFile(uploaded_file) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        logger.info("Unreadable docx upload: %s", exc)
        raise reject(
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
        raise reject(
            uploaded_file,
            "compressed_bomb",
            f"{name} looks like a compressed bomb (it would unpack to {max(1, round(total / MB))} MB) and was refused. "
            "If it is a genuine document, compress its pictures (in Word: File → Compress Pictures) "
            "and upload it again.",
        )
    if any(info.flag_bits & 0x1 for info in infos):
        raise reject(
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
        raise reject(
            uploaded_file,
            "not_docx",
            f"{name} is not a Word document (.docx): its contents look like {looks_like}. "
            "Open it in Word, save it as .docx and upload that.",
        )
    if "[Content_Types].xml" not in names:
        raise reject(
            uploaded_file,
            "damaged",
            f"{name} is damaged: it is missing parts every Word document has. "
            "Open it in Word, save it again and upload the new copy.",
        )


def _too_many_members(uploaded_file, count: int) -> UploadRejected:
    return reject(
        uploaded_file,
        "compressed_bomb",
        f"{display_name(uploaded_file)} contains {count:,} files, far more than a Word document has, "
        "and was refused. Open it in Word, save a fresh copy and upload that.",
    )


def _docx_blocks(container, depth: int = 0) -> Iterator[str]:
    """Paragraph and table text in document order; one line per table row, cells joined with " | "."""
    # python-docx loads only when a Word document is read
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


def docx_text(uploaded_file) -> ExtractedText:
    # python-docx loads only when a Word document is read
    import docx

    check_docx_zip(uploaded_file)
    name = display_name(uploaded_file)
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
        raise reject(
            uploaded_file,
            "damaged",
            f"{name} can't be opened as a Word document: it may be damaged. "
            "Open it in Word, save it again and upload the new copy.",
        ) from None
    text = clean_text("\n".join(parts)).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if not text:
        raise reject(
            uploaded_file,
            "no_text",
            f"{name} has no text in it. Check you uploaded the right document, or paste the text into the brief.",
        )
    text, truncated = cap(text, MAX_TEXT_CHARS)
    return ExtractedText(
        text=text, truncated=truncated, warnings=[chars_warning(uploaded_file, MAX_TEXT_CHARS)] if truncated else []
    )
