"""Writes for focus-group assets: documents (their text) and images (a re-encoded copy and a description).

Assets are reference material the personas see during the discussion, quoted to the model as data, never
as instructions. Text is stored verbatim; nothing here interprets what a document says.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import unicodedata
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Length

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.services import job_cancel, job_create
from focusgroups.models import Asset, AssetKind, FocusGroup
from personas import uploads

logger = logging.getLogger(__name__)

DOCUMENT_KINDS = frozenset({"pdf", "docx", "txt", "md"})
IMAGE_KINDS = frozenset({"jpeg", "png", "webp"})
ASSET_KINDS = DOCUMENT_KINDS | IMAGE_KINDS

MAX_ASSETS = 10
MAX_TOTAL_TEXT_CHARS = 400_000

DOCUMENT_CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "md": "text/markdown",
}
# What image_data_url produces, and what asset_image will serve.
STORED_IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png"}


def _archived_error() -> ApplicationError:
    return ApplicationError("This session is archived. Restore it to change it.", code="archived", status_code=409)


def _display_filename(upload) -> str:
    """The file's own name for display: no directories, no control characters, at most 255 characters."""
    raw = str(getattr(upload, "name", "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C").strip() or "upload"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + "…" + dot + ext) if dot and len(ext) <= 10 else name[:254] + "…"
    return name


def _decode_data_url(data_url: str) -> tuple[str, bytes]:
    header, _, payload = data_url.partition(",")
    mime = header.removeprefix("data:").split(";", 1)[0]
    if mime not in STORED_IMAGE_TYPES or ";base64" not in header:
        raise ValueError(f"Unexpected image encoding {header[:40]!r}")
    return mime, base64.b64decode(payload, validate=True)


def _check_room(focus_group: FocusGroup, *, filename: str, new_chars: int) -> None:
    """Refuse the 11th asset, or text that would take the session over its total."""
    totals = Asset.objects.filter(focus_group=focus_group).aggregate(
        count=Count("id"), chars=Sum(Length("text"), filter=Q(kind=AssetKind.DOCUMENT))
    )
    if totals["count"] >= MAX_ASSETS:
        raise ApplicationError(
            f"“{filename}” was not added: a session can have at most {MAX_ASSETS} assets. "
            "Remove one you no longer need and upload it again.",
            code="too_many_assets",
            extra={"filename": filename, "limit": MAX_ASSETS},
        )
    used = totals["chars"] or 0
    if used + new_chars > MAX_TOTAL_TEXT_CHARS:
        raise ApplicationError(
            f"“{filename}” was not added: its {new_chars:,} characters of text would take this session's documents "
            f"over {MAX_TOTAL_TEXT_CHARS:,} characters in total ({used:,} used). "
            "Upload only the relevant part, or remove another document first.",
            code="assets_text_limit",
            extra={"filename": filename, "limit": MAX_TOTAL_TEXT_CHARS, "used": used, "characters": new_chars},
        )


def _lock(focus_group: FocusGroup) -> FocusGroup:
    """The session's row, locked so concurrent uploads count assets one at a time; archived → 409."""
    locked = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
    if locked.archived:
        raise _archived_error()
    return locked


def asset_add(*, focus_group: FocusGroup, upload) -> Asset:
    """Add an uploaded document or image to a session.

    Documents (PDF, DOCX, TXT, MD): validated, their text extracted and stored with any warnings.
    Images (JPEG, PNG, WebP): validated, decoded and re-encoded without metadata, stored under a generated
    name, and described by the vision model in an ``asset_description`` job whose result (and the asset's
    ``description``) holds the text. Raises ``UploadRejected`` (400) for a file we will not use,
    ``ApplicationError`` 400 past the limits and 409 when the session is archived.
    """
    if focus_group.archived:
        raise _archived_error()
    filename = _display_filename(upload)
    kind = uploads.validate_upload(upload, allowed=set(ASSET_KINDS))
    if kind in DOCUMENT_KINDS:
        return _add_document(focus_group, upload, kind, filename)
    return _add_image(focus_group, upload, kind, filename)


def _add_document(focus_group: FocusGroup, upload, kind: str, filename: str) -> Asset:
    extracted = uploads.extract_text(upload, kind)
    fields = {
        "focus_group": focus_group,
        "kind": AssetKind.DOCUMENT,
        "filename": filename,
        "content_type": DOCUMENT_CONTENT_TYPES[kind],
        "size": int(upload.size or 0),
        "text": extracted.text,
        "warnings": list(extracted.warnings),
    }
    if extracted.pages and any(f.name == "pages" for f in Asset._meta.get_fields()):
        fields["pages"] = extracted.pages  # kept when the model has somewhere to keep it
    with transaction.atomic():
        _lock(focus_group)
        _check_room(focus_group, filename=filename, new_chars=len(extracted.text))
        return Asset.objects.create(**fields)


def _add_image(focus_group: FocusGroup, upload, kind: str, filename: str) -> Asset:
    mime, data = _decode_data_url(uploads.image_data_url(upload, kind))
    stored_name = f"image-{uuid.uuid4().hex[:12]}.{STORED_IMAGE_TYPES[mime]}"
    asset = Asset(
        focus_group=focus_group,
        kind=AssetKind.IMAGE,
        filename=filename,
        content_type=mime,
        size=int(upload.size or 0),
    )
    saved = False
    try:
        with transaction.atomic():
            locked = _lock(focus_group)
            _check_room(focus_group, filename=filename, new_chars=0)
            asset.image.save(stored_name, ContentFile(data), save=False)
            saved = True
            asset.save()
            asset.job = job_create(
                owner=locked.owner,
                kind="asset_description",
                target=asset,
                total=1,
                params={"asset_id": asset.pk, "focus_group_id": locked.pk, "filename": filename},
                message="Waiting to look at the image",
            )
            asset.save(update_fields=["job"])
    except BaseException:
        if saved and not (asset.pk and Asset.objects.filter(pk=asset.pk).exists()):
            asset.image.storage.delete(asset.image.name)  # the row was rolled back: no orphan file
        raise
    return asset


def asset_delete(*, asset: Asset) -> None:
    """Remove an asset and its stored file (once the deletion is committed). Archived session → 409."""
    with transaction.atomic():
        _lock(asset.focus_group)
        job = asset.job
        file_name = asset.image.name if asset.image else ""
        storage = asset.image.storage
        asset.delete()
        if file_name:
            transaction.on_commit(lambda: _delete_file(storage, file_name))
    if job is not None and job.is_active:
        with contextlib.suppress(IllegalJobTransition):  # it finished meanwhile; its result goes nowhere
            job_cancel(job=job, reason="The image was removed.")


def _delete_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.exception("Could not delete asset file %s", name)
