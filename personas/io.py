"""Import and export of personas as CSV and JSON.

Export columns are the profile fields plus tags, folder and source, then the latest quality check
(``quality_*`` columns in CSV, a ``quality`` object in JSON; import ignores both). In CSV, list
fields are joined with `` | ``; in JSON they stay lists, wrapped as
``{"version": 1, "personas": [...]}``.

Import is all-or-nothing per file: every row is validated first, and one bad row
means nothing is imported and every row's errors are reported.
"""

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.text import slugify

from cohorta.errors import ApplicationError
from personas.access import get_folder_for_user
from personas.models import (
    BASIC_FIELDS,
    BIG_FIVE,
    LIST_FIELDS,
    PROFILE_FIELDS,
    TEXT_FIELDS,
    Folder,
    Persona,
    PersonaCheck,
    PersonaSource,
    TechSavviness,
)
from personas.quality import check_summary, latest_checks_for
from personas.selectors import personas_for_user
from personas.services import folder_create, persona_create

EXPORT_FORMAT_VERSION = 1
EXPORT_COLUMNS = (*PROFILE_FIELDS, "tags", "folder", "source")
# Exported after the profile: the latest quality check. Not profile columns, so import ignores them.
QUALITY_COLUMNS = (
    "quality_adherence",
    "quality_consistency",
    "quality_flagged",
    "quality_flag_reason",
    "quality_source",
    "quality_checked_at",
)
LIST_COLUMNS = (*LIST_FIELDS, "tags")
CSV_LIST_SEPARATOR = " | "
MAX_IMPORT_ROWS = 1000
# Spreadsheet apps run cells that start with these as formulas; exported values get a leading
# apostrophe (the usual defence), which import strips again so the round trip is exact.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --- export ----------------------------------------------------------------------------


def persona_export_record(persona: Persona) -> dict:
    record = persona.profile_data()
    record["tags"] = list(persona.tags or [])
    record["folder"] = persona.folder.name if persona.folder is not None else None
    record["source"] = persona.source
    return record


def _quality_cells(check: PersonaCheck | None) -> list:
    """The latest quality check in CSV cells (blank when never checked). Import ignores these columns."""
    if check is None:
        return [None] * len(QUALITY_COLUMNS)
    return [
        check.adherence,
        check.consistency,
        "yes" if check.flagged else "no",
        " ".join(check.flag_reasons),
        check.source_label or check.get_source_kind_display(),
        check.created_at.isoformat(),
    ]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = CSV_LIST_SEPARATOR.join(str(item) for item in value)
    value = str(value)
    if value.startswith(_FORMULA_PREFIXES):
        value = "'" + value
    return value


def export_csv(personas: Iterable[Persona]) -> str:
    personas = list(personas)
    checks = latest_checks_for(personas=personas)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow((*EXPORT_COLUMNS, *QUALITY_COLUMNS))
    for persona in personas:
        record = persona_export_record(persona)
        cells = [record[column] for column in EXPORT_COLUMNS] + _quality_cells(checks.get(persona.pk))
        writer.writerow([_csv_cell(cell) for cell in cells])
    return buffer.getvalue()


def export_json(personas: Iterable[Persona]) -> str:
    personas = list(personas)
    checks = latest_checks_for(personas=personas)
    # "quality": the latest quality check (personas/quality.py), or null; import ignores it.
    records = [
        {**persona_export_record(persona), "quality": check_summary(checks.get(persona.pk))} for persona in personas
    ]
    return json.dumps({"version": EXPORT_FORMAT_VERSION, "personas": records}, ensure_ascii=False, indent=2)


def export_personas(personas: Iterable[Persona], *, fmt: str) -> tuple[str, str]:
    """The file body and its content type."""
    if fmt == "json":
        return export_json(personas), "application/json; charset=utf-8"
    if fmt == "csv":
        return export_csv(personas), "text/csv; charset=utf-8"
    raise ApplicationError("Export format must be csv or json.", code="validation_error")


# --- import: reading the file --------------------------------------------------------------


def _file_error(message: str) -> ApplicationError:
    return ApplicationError(message, code="import_invalid", extra={"rows": []})


def _detect_format(filename: str, text: str) -> str:
    name = filename.lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith((".csv", ".txt")):
        return "csv"
    return "json" if text.lstrip().startswith(("{", "[")) else "csv"


def _read_csv(text: str) -> list[dict]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fieldnames = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
        if "name" not in fieldnames:
            raise _file_error(
                "This does not look like a personas CSV: the first row must be a header with at least a “name” "
                "column (export a folder to see the expected columns)."
            )
        reader.fieldnames = fieldnames
        rows: list[dict] = []
        for row in reader:
            if len(rows) >= MAX_IMPORT_ROWS:
                raise _file_error(f"Too many rows: a file may hold at most {MAX_IMPORT_ROWS:,} personas.")
            if not any((value or "").strip() for key, value in row.items() if key):
                continue  # a blank line
            rows.append({key: value for key, value in row.items() if key})
        return rows
    except csv.Error as exc:
        raise _file_error(f"The CSV could not be read: {exc}.") from None


def _read_json(text: str) -> list[dict]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _file_error(f"The JSON could not be parsed (line {exc.lineno}, column {exc.colno}).") from None
    records = payload.get("personas") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise _file_error("Expected a JSON object with a “personas” list (or a list of personas).")
    if len(records) > MAX_IMPORT_ROWS:
        raise _file_error(f"Too many rows: a file may hold at most {MAX_IMPORT_ROWS:,} personas.")
    return records


def upload_content(upload) -> bytes:
    """The bytes of an uploaded file, refusing oversized files before reading them."""
    if upload.size > settings.UPLOAD_MAX_MB * 1024 * 1024:
        raise _file_error(f"The file is larger than {settings.UPLOAD_MAX_MB} MB.")
    return upload.read()


def read_upload(*, filename: str, content: bytes) -> list[dict]:
    """Decode and parse an uploaded CSV or JSON file into raw records (not yet validated)."""
    limit = settings.UPLOAD_MAX_MB * 1024 * 1024
    if len(content) > limit:
        raise _file_error(f"The file is larger than {settings.UPLOAD_MAX_MB} MB.")
    if not content.strip():
        raise _file_error("The file is empty.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(
            "The file is not UTF-8 text. Upload a CSV or JSON file exported from Cohorta, "
            "or save your spreadsheet as “CSV UTF-8”."
        ) from None
    if "\x00" in text:
        raise _file_error("The file looks binary, not CSV or JSON text.")
    records = _read_json(text) if _detect_format(filename, text) == "json" else _read_csv(text)
    if not records:
        raise _file_error("The file holds no personas.")
    return records


# --- import: validating rows --------------------------------------------------------------


@dataclass
class ImportRow:
    number: int
    data: dict
    tags: list[str]
    folder_name: str


def _unescape(value: str) -> str:
    if value.startswith("'") and value[1:].startswith(_FORMULA_PREFIXES):
        return value[1:]
    return value


def _as_list(value) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = _unescape(value).split("|")
    else:
        raise ValueError("must be a list of text")
    return [_unescape(str(item).strip()) for item in items if str(item).strip()]


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        raise ValueError("must be text")
    return _unescape(str(value).strip())


def _as_int(value, *, low: int, high: int, required: bool) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError("is required")
        return None
    if isinstance(value, (bool, list, dict)):
        raise ValueError("must be a whole number")
    try:
        number = float(str(value).strip())
        whole = int(number)
    except (ValueError, OverflowError):
        raise ValueError("must be a whole number") from None
    if number != whole:
        raise ValueError("must be a whole number")
    if not low <= whole <= high:
        raise ValueError(f"must be between {low} and {high}")
    return whole


def _tech_savviness(value) -> str:
    text = _as_text(value).lower()
    if text and text not in TechSavviness.values:
        raise ValueError(f"must be one of {', '.join(TechSavviness.values)} (or empty)")
    return text


def _validate_record(record, number: int) -> tuple[ImportRow | None, list[dict]]:
    if not isinstance(record, dict):
        return None, [{"row": number, "field": "", "message": "must be an object with persona fields"}]
    record = {str(key).strip().lower(): value for key, value in record.items()}
    errors: list[dict] = []
    data: dict = {}

    def attempt(field: str, parse):
        try:
            data[field] = parse(record.get(field))
        except ValueError as exc:
            errors.append({"row": number, "field": field, "message": str(exc)})

    attempt("name", _as_text)
    if "name" in data and not data["name"]:
        errors.append({"row": number, "field": "name", "message": "is required"})
    attempt("age", lambda value: _as_int(value, low=13, high=110, required=True))
    for field in BASIC_FIELDS:
        if field not in ("name", "age"):
            attempt(field, _as_text)
    for trait in BIG_FIVE:
        attempt(trait, lambda value: _as_int(value, low=0, high=100, required=False))
    for field in LIST_FIELDS:
        attempt(field, _as_list)
    for field in TEXT_FIELDS:
        attempt(field, _tech_savviness if field == "tech_savviness" else _as_text)
    tags: list[str] = []
    try:
        tags = _as_list(record.get("tags"))
    except ValueError as exc:
        errors.append({"row": number, "field": "tags", "message": str(exc)})
    folder_name = ""
    try:
        folder_name = _as_text(record.get("folder"))[:100]
    except ValueError as exc:
        errors.append({"row": number, "field": "folder", "message": str(exc)})

    if not errors:
        # The model's own rules too (lengths and the like), without touching the database.
        try:
            Persona(**data).clean_fields(exclude=["owner", "folder", "brief"])
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.extend({"row": number, "field": field, "message": message} for message in messages)
    if errors:
        return None, errors
    return ImportRow(number=number, data=data, tags=tags, folder_name=folder_name), []


def validate_records(records: list) -> tuple[list[ImportRow], list[dict]]:
    """Every row checked; rows are numbered from 1 (the first persona, after any CSV header)."""
    rows, errors = [], []
    for number, record in enumerate(records, start=1):
        row, row_errors = _validate_record(record, number)
        if row is not None:
            rows.append(row)
        errors.extend(row_errors)
    return rows, errors


def format_row_error(error: dict) -> str:
    if error.get("field"):
        return f"Row {error['row']}: {error['field']} — {error['message']}"
    return f"Row {error['row']}: {error['message']}"


# --- import: writing ----------------------------------------------------------------------


def personas_import(*, owner, filename: str, content: bytes, folder: Folder | None = None) -> list[Persona]:
    """Create every persona in the file, or none of them.

    With a target ``folder`` all go there; without one, the folder named in each row is used
    (created if the user has none by that name), so a whole library round-trips.
    """
    if folder is not None and folder.owner_id != owner.pk:
        raise ApplicationError("No such folder.", code="not_found", status_code=404)
    records = read_upload(filename=filename, content=content)
    rows, errors = validate_records(records)
    if errors:
        bad_rows = len({error["row"] for error in errors})
        raise ApplicationError(
            f"Nothing was imported: {bad_rows} of {len(records)} row{'s' if len(records) != 1 else ''} "
            f"{'have' if bad_rows != 1 else 'has'} errors. Fix them and upload the file again.",
            code="import_invalid",
            extra={"rows": errors},
        )
    note = f"Imported from {filename}"[:500]
    with transaction.atomic():
        folders = {f.name: f for f in Folder.objects.filter(owner=owner)}
        created = []
        for row in rows:
            target = folder
            if target is None and row.folder_name:
                target = folders.get(row.folder_name)
                if target is None:
                    target = folders[row.folder_name] = folder_create(owner=owner, name=row.folder_name)
            created.append(
                persona_create(
                    owner=owner,
                    data=row.data,
                    source=PersonaSource.IMPORTED,
                    folder=target,
                    tags=list(dict.fromkeys(row.tags)),
                    note=note,
                )
            )
    return created


def export_selection(*, user, ids: list[int] | None = None, folder: str | int | None = None):
    """(personas, label) to export: a selection, a folder (``"none"``: no folder) or everything.
    ``Http404`` when any id or the folder is not the user's."""

    if ids:
        personas = personas_for_user(user=user).filter(pk__in=ids)
        if personas.count() != len(set(ids)):
            raise Http404("No such persona")
        return personas, "selection"
    if folder == "none":
        return personas_for_user(user=user, folder="none"), "no-folder"
    if folder not in (None, ""):
        found = get_folder_for_user(user, folder)
        return personas_for_user(user=user, folder=found.pk), found.name
    return personas_for_user(user=user), "all"


def export_response(personas, *, label: str, fmt: str):
    """The download: ``cohorta-personas-<label>-<date>.<fmt>``."""

    body, content_type = export_personas(personas, fmt=fmt)
    response = HttpResponse(body, content_type=content_type)
    filename = f"cohorta-personas-{slugify(label) or 'export'}-{timezone.localdate().isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
