"""How a CSV is read: encoding and delimiter guessed, rows streamed into labelled segments up to
settings.GROUNDING_CSV_MAX_ROWS, the rest counted (up to CSV_COUNT_BOUND) for the warning."""

from __future__ import annotations

import csv
import io
import itertools
import re

from django.conf import settings

from personas.uploads.common import MAX_TEXT_CHARS, ExtractedText, display_name, reject, text_stream
from personas.uploads.encodings import text_encoding

CSV_COUNT_BOUND = 1_000_000  # stop counting rows beyond the cap here
CSV_MAX_COLUMNS = 200
CSV_SNIFF_CHARS = 64 * 1024
_LABEL_COLUMNS = ("label", "segment", "segment_name", "persona", "persona_name", "name")


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


def csv_text(uploaded_file) -> ExtractedText:
    name = display_name(uploaded_file)
    encoding = text_encoding(uploaded_file, "csv")
    warnings: list[str] = []
    if encoding == "cp1252":
        warnings.append(
            f"{name} isn't UTF-8, so it was read as Windows-1252 (Western European). "
            "If accented letters look wrong, export it as “CSV UTF-8” and upload it again."
        )
    sample_stream = text_stream(uploaded_file, encoding)
    sample = sample_stream.read(CSV_SNIFF_CHARS)
    complete = not sample_stream.read(1)
    delimiter = _guess_delimiter(sample, complete)
    del sample, sample_stream

    max_rows = settings.GROUNDING_CSV_MAX_ROWS
    reader = csv.reader(text_stream(uploaded_file, encoding), delimiter=delimiter)
    record = 0  # row number as a spreadsheet shows it: the header is row 1
    try:
        header = None
        for row in reader:
            record += 1
            if any(cell.strip() for cell in row):
                header = row
                break
        if header is None:
            raise reject(
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
        raise reject(
            uploaded_file,
            "damaged",
            f"{name} can't be read as CSV (row {record}: {exc}). "
            "Check the quotes and separators around that row, or export it again, and upload the new copy.",
        ) from None
    finally:
        uploaded_file.seek(0)

    if not segments:
        raise reject(
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
