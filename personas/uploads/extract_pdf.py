"""How a PDF is read: opened with pypdf (an empty user password tried when it is encrypted), then text
taken page by page within a page, time and character budget; unreadable pages are skipped with a warning."""

from __future__ import annotations

import logging
import time

from personas.uploads.common import (
    MAX_TEXT_CHARS,
    ExtractedText,
    UploadRejected,
    cap,
    chars_warning,
    clean_text,
    display_name,
    read_head,
    reject,
)
from personas.uploads.sniffing import content_mismatch, sniff_kind

logger = logging.getLogger(__name__)

PDF_MAX_PAGES = 300
PDF_TIME_BUDGET_SECONDS = 30.0  # stop extracting (with a warning) if a PDF is pathologically slow


def pdf_text(uploaded_file) -> ExtractedText:
    # pypdf loads only when a PDF is read
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    name = display_name(uploaded_file)
    damaged = reject(
        uploaded_file,
        "damaged",
        f"{name} is damaged or incomplete and can't be read. "
        "Open it in a PDF viewer, save or export it again, and upload the new copy.",
    )
    password = reject(
        uploaded_file,
        "encrypted",
        f"{name} is password-protected. Remove the password and upload it again.",
    )
    too_complex = reject(
        uploaded_file,
        "too_complex",
        f"{name} is too complex to read safely (it expands to more data than we allow). "
        "Export only the pages you need as a new PDF and upload that.",
    )
    head = read_head(uploaded_file)
    if sniff_kind(head) != "pdf":
        raise content_mismatch(uploaded_file, head, "is not a PDF", "Upload the original PDF file.")

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
        page_text = clean_text(page_text).strip()
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
        raise reject(
            uploaded_file,
            "no_text",
            f"{name} contains no selectable text; it looks like a scanned document or images only. "
            "Upload a PDF with selectable text (or run OCR on it first), or paste the text into the brief.",
        )
    text, cut = cap(text, MAX_TEXT_CHARS)
    if cut:
        truncated = True
        warnings.append(chars_warning(uploaded_file, MAX_TEXT_CHARS))
    return ExtractedText(text=text, pages=page_count, truncated=truncated, warnings=warnings)
