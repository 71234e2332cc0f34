"""Data exports: start one (a job), build it inside the worker, serve it to its owner, purge old ones.

Account deletion lives in ``privacy.erasure``.
"""

import contextlib
import logging
import os
import posixpath
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone

from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobCancelled
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_create
from privacy import exports
from privacy.models import DataExport
from privacy.selectors import EXPORT_KIND, data_export_active_job

logger = logging.getLogger(__name__)

EXPORT_TTL = timedelta(days=7)
# Exports sit outside anything MEDIA_URL could serve, one folder per user, each under a random name.
EXPORT_ROOT = "private/exports"


def export_dir(user_id) -> str:
    return f"{EXPORT_ROOT}/{user_id}"


def data_export_start(*, user, request=None) -> Job:
    """Start building the user's export and answer at once with the job.

    One export at a time: while one is waiting or running, asking again returns it.
    """
    with transaction.atomic():
        # Serialises double clicks and parallel API calls for this user.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        active = data_export_active_job(user=user)
        if active is not None:
            return active
        job = job_create(owner=user, kind=EXPORT_KIND, total=1, message="Waiting to start")
        export = DataExport.objects.create(owner=user, job=job)
        audit_record(
            action=AuditEntry.Action.DATA_EXPORT,
            target=export,
            subject_user=user,
            after={"job_id": str(job.pk)},
            reason="Requested by the account holder.",
            request=request,
        )
    return job


def data_export_build(*, job: Job, progress) -> dict:
    """Inside the worker: write the ZIP, record it, and drop the user's older exports."""
    export, _ = DataExport.objects.get_or_create(job=job, defaults={"owner_id": job.owner_id})
    name = f"{export_dir(job.owner_id)}/{secrets.token_urlsafe(24)}.zip"
    stored, size, counts = exports.export_write(
        user=job.owner, storage=default_storage, name=name, progress=progress, ttl_days=EXPORT_TTL.days
    )
    now = timezone.now()
    updated = DataExport.objects.filter(pk=export.pk).update(
        file=stored, size=size, counts=counts, ready_at=now, expires_at=now + EXPORT_TTL, removed_at=None
    )
    if not updated:
        # The account (and so this export's row) was deleted while the file was being written.
        _delete_file(stored)
        raise JobCancelled("The account was deleted.")
    for older in DataExport.objects.filter(owner_id=job.owner_id, removed_at__isnull=True).exclude(pk=export.pk):
        data_export_remove(export=older)
    return {
        "export_id": export.pk,
        "size": size,
        "counts": counts,
        "expires_at": (now + EXPORT_TTL).isoformat(),
        "download_url": reverse("api:me-export-download", args=[job.pk]),
    }


def _delete_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.exception("Could not delete export file %s", name)


def data_export_remove(*, export: DataExport) -> None:
    """Delete an export's file and remember that it is gone (the row stays for the history)."""
    if export.file:
        _delete_file(export.file)
    DataExport.objects.filter(pk=export.pk).update(file="", removed_at=timezone.now())


def data_exports_purge(*, now=None) -> int:
    """Remove expired exports, and files left in the exports folder that no row points to
    (a worker killed between writing the file and recording it). Idempotent."""
    now = now or timezone.now()
    count = 0
    for export in DataExport.objects.filter(removed_at__isnull=True, expires_at__lte=now):
        data_export_remove(export=export)
        count += 1
    count += _purge_orphans(now)
    if count:
        logger.info("Removed %s expired or orphaned data export(s)", count)
    return count


def _purge_orphans(now) -> int:
    known = set(DataExport.objects.exclude(file="").values_list("file", flat=True))
    removed = 0
    try:
        user_dirs, _ = default_storage.listdir(EXPORT_ROOT)
    except (FileNotFoundError, NotImplementedError):
        return 0
    for user_dir in user_dirs:
        _, files = default_storage.listdir(f"{EXPORT_ROOT}/{user_dir}")
        for filename in files:
            name = f"{EXPORT_ROOT}/{user_dir}/{filename}"
            if name in known:
                continue
            try:
                old = default_storage.get_modified_time(name) <= now - EXPORT_TTL
            except (OSError, NotImplementedError):
                continue
            if old:
                _delete_file(name)
                removed += 1
    return removed


def data_export_check_downloadable(*, export: DataExport) -> None:
    """Raise a clear ApplicationError when the export cannot be downloaded (yet, or any more)."""
    if export.removed_at is not None or export.is_expired:
        raise ApplicationError(
            "This export has expired and was deleted. Start a new one on the Your data page.",
            code="export_expired",
            status_code=410,
        )
    if not export.file:
        if export.job.state in (JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED):
            raise ApplicationError(
                "This export did not finish. Start a new one.", code="export_failed", status_code=409
            )
        raise ApplicationError(
            "This export is still being prepared: try again when its job is done.",
            code="export_not_ready",
            status_code=409,
        )


def data_export_response(*, export: DataExport) -> FileResponse:
    """The export's ZIP streamed from storage. Callers have checked that it belongs to the requester."""
    data_export_check_downloadable(export=export)
    try:
        handle = default_storage.open(export.file, "rb")
    except FileNotFoundError:
        logger.error("Export %s: file %s is missing", export.pk, export.file)
        raise ApplicationError(
            "The export file is missing. Start a new export.", code="export_missing", status_code=410
        ) from None
    stamp = timezone.localtime(export.ready_at or export.created_at).strftime("%Y-%m-%d")
    response = FileResponse(
        handle, as_attachment=True, filename=f"cohorta-data-{stamp}.zip", content_type="application/zip"
    )
    # Personal data: never kept by a browser or proxy cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def export_files_remove_for_user(*, user_id) -> None:
    """Remove every export file of a user, also ones no row knows about (for account deletion)."""
    folder = export_dir(user_id)
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        files = []
    for filename in files:
        _delete_file(posixpath.join(folder, filename))
    # Local storage keeps the (now empty) folder; remove it too. Other storages have no folders.
    with contextlib.suppress(OSError, NotImplementedError):
        os.rmdir(default_storage.path(folder))
