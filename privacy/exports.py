"""The ZIP of everything a user has: one JSON file per kind of data, plus the files they uploaded.

    name, size, counts = export_write(user=user, storage=default_storage, progress=ctx.progress)

Layout of the archive (described to the user in its README.txt)::

    manifest.json            format, version, when, counts, the list of files
    profile.json             the account: email, name, role, balance, email addresses, API tokens, 2FA
    folders.json             persona folders
    personas.json            every persona with its full profile and all its versions
    persona_checks.json      every quality check of a persona: the judge's scores and reasons, and what was judged
    persona_briefs.json      what was asked when generating personas, with the grounding documents' text
    panels.json              panels sampled from a population: target, quotas, seed, each person's sampled core
    populations.json         population marginals uploaded; microdata.json: microdata files uploaded (every row)
    references.json          real surveys uploaded to validate against: each one's mapping and every row
    validations.json         validations against them: each one's mapping, seed, state and scorecard
    sessions/<id>-<slug>.json  each focus group: participants, guide, assets, messages, themes, report
    credit_ledger.json       every credit movement
    usage_events.json        every AI call made for the account (tokens, cost, latency)
    jobs.json                background jobs (what ran, when, how it ended)
    account_history.json     what happened to the account's money or access (from the audit log)
    files/sessions/<id>/…    images uploaded to sessions

Reads only: the caller (``services.data_export_build``) decides where the file goes and records it.
"""

import json
import logging
import posixpath
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.text import get_valid_filename, slugify

from billing.models import CreditTransaction
from cohorta.accounts.models import ApiToken
from cohorta.audit.models import AuditEntry
from cohorta.jobs.models import Job
from cohorta.jobs.registry import kind_label
from focusgroups.models import Asset, FocusGroup
from focusgroups.report.exports import everything
from panels.models import MicrodataFile, Panel, PopulationFile
from personas.models import Folder, GenerationBrief, Persona, PersonaCheck
from usage.models import UsageEvent
from validation.models import Reference, Validation

logger = logging.getLogger(__name__)

FORMAT = "cohorta.account_export"
VERSION = 1
Progress = Callable[..., None]

README = """Your Cohorta data
=================

Exported {exported_at} for account #{user_id}.

Every file is JSON (UTF-8). Dates are ISO 8601 in UTC; money is a string
to keep its exact decimal value.

manifest.json          what is in this archive, with counts
profile.json           your account: email, name, role, credit balance, email
                       addresses, API tokens (names and prefixes only: the
                       tokens themselves are never stored), two-factor methods
folders.json           your persona folders
personas.json          your personas, with their full profiles and every
                       earlier version
persona_checks.json    the quality judge's scores for your personas (staying in
                       character, agreeing with themselves, 0-9), its reasons,
                       and the panel, session or survey each check came from
persona_briefs.json    what you asked for when generating personas, with the
                       text of the documents you attached
panels.json            your panels: who they were drawn to represent, quotas,
                       seed, each person's sampled demographics, and each
                       quality check (the interview answers and the diversity)
populations.json       population marginals you uploaded
microdata.json         microdata files you uploaded, every row
references.json        surveys real people answered that you uploaded to
                       validate against: each one's columns, every row and
                       the mapping you confirmed (questions, scales,
                       demographics, weight)
validations.json       your validations: the mapping and seed used, the
                       matched panel and survey run, and the scorecard
                       (measures, baselines, subgroups, verdict)
sessions/              one file per focus group session: participants, the
                       discussion guide, assets, the full transcript, key
                       themes and the report (same shape as the session's
                       "Everything (JSON)" download)
credit_ledger.json     every change to your credits
usage_events.json      every AI call made for you: model, tokens, cost, timing
jobs.json              background jobs you ran
account_history.json   changes to your credits or access made by Cohorta
                       staff or the system
files/                 images you uploaded to sessions

This archive is deleted from Cohorta's servers {ttl_days} days after it was made.
"""


def _dumps(data) -> bytes:
    return json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2).encode()


class _Archive:
    """A ZIP being written, with a list of what went in for the manifest."""

    def __init__(self, fileobj) -> None:
        self.zip = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.entries: list[str] = []

    def json(self, name: str, data) -> None:
        self.zip.writestr(name, _dumps(data))
        self.entries.append(name)

    def json_list(self, name: str, rows: Iterable[dict]) -> int:
        """A JSON array written row by row, so a long usage history never sits in memory whole."""
        count = 0
        with self.zip.open(name, "w", force_zip64=True) as out:
            out.write(b"[")
            for row in rows:
                out.write(b"\n" if count == 0 else b",\n")
                out.write(json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False).encode())
                count += 1
            out.write(b"\n]\n" if count else b"]\n")
        self.entries.append(name)
        return count

    def copy(self, name: str, source) -> None:
        with self.zip.open(name, "w", force_zip64=True) as out:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                out.write(chunk)
        self.entries.append(name)

    def text(self, name: str, text: str) -> None:
        self.zip.writestr(name, text.encode())
        self.entries.append(name)

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "_Archive":
        return self

    def __exit__(self, *exc) -> None:
        # Also on errors, so the ZIP never outlives the temporary file it writes to.
        self.close()


# --- the parts ---------------------------------------------------------------------------------


def profile_data(user) -> dict:

    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "is_active": user.is_active,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "credit_balance": type(user).objects.filter(pk=user.pk).values_list("credit_balance", flat=True).first(),
        "monthly_quota_usd": user.monthly_quota_usd,
        "email_addresses": list(
            EmailAddress.objects.filter(user=user).order_by("-primary", "email").values("email", "verified", "primary")
        ),
        # Names and prefixes only: the secret part of a token is never stored anywhere.
        "api_tokens": list(
            ApiToken.objects.filter(user=user)
            .order_by("created_at")
            .values("name", "prefix", "created_at", "last_used_at", "revoked_at")
        ),
        # Which second factors are set up, never their secrets.
        "two_factor": list(
            Authenticator.objects.filter(user=user).order_by("created_at").values("type", "created_at", "last_used_at")
        ),
        # Single sign-on accounts linked to this one: which provider and the provider's id for the person.
        "single_sign_on": list(
            SocialAccount.objects.filter(user=user)
            .order_by("date_joined")
            .values("provider", "uid", "date_joined", "last_login")
        ),
    }


def folders_data(user) -> list[Mapping[str, Any]]:

    return list(Folder.objects.filter(owner=user).order_by("name").values("id", "name", "created_at"))


def personas_rows(user) -> Iterable[dict]:

    personas = (
        Persona.objects.filter(owner=user)
        .select_related("folder")
        .prefetch_related("versions")
        .order_by("id")
        .iterator(chunk_size=200)
    )
    for persona in personas:
        folder = persona.folder
        yield {
            "id": persona.pk,
            "folder": {"id": folder.pk, "name": folder.name} if folder is not None else None,
            "tags": persona.tags,
            "source": persona.source,
            "simulated": persona.simulated,
            "brief_id": persona.brief_id,
            "grounding": persona.grounding,
            "sampled_core": persona.core,
            "version": persona.version,
            "created_at": persona.created_at,
            "updated_at": persona.updated_at,
            "profile": persona.profile_data(),
            "versions": [
                {
                    "number": version.number,
                    "source": version.source,
                    "note": version.note,
                    "created_at": version.created_at,
                    "profile": version.data,
                }
                for version in sorted(persona.versions.all(), key=lambda v: v.number)
            ],
        }


def persona_checks_rows(user) -> Iterable[dict]:
    checks = PersonaCheck.objects.filter(persona__owner=user).order_by("id").iterator(chunk_size=500)
    for check in checks:
        yield {
            "id": check.pk,
            "persona_id": check.persona_id,
            "adherence": check.adherence,
            "consistency": check.consistency,
            "adherence_reason": check.adherence_reason,
            "consistency_reason": check.consistency_reason,
            "judge_model": check.judge_model,
            "simulated": check.simulated,
            "source_kind": check.source_kind,
            "source_id": check.source_id,
            "source_label": check.source_label,
            "answers_judged": check.evidence_count,
            "error": check.error,
            "created_at": check.created_at,
        }


def panels_rows(user) -> Iterable[dict]:
    for panel in Panel.objects.filter(owner=user).order_by("id").iterator(chunk_size=20):
        yield {
            "id": panel.pk,
            "name": panel.name,
            "size": panel.size,
            "seed": panel.seed,
            "profile_depth": panel.depth,
            "target_kind": panel.target_kind,
            "target": panel.target,
            "quotas": panel.quotas,
            "description": panel.description,
            "folder_id": panel.folder_id,
            "created_at": panel.created_at,
            "members": [
                {"position": m.position, "core": m.core, "persona_id": m.persona_id, "state": m.state, "error": m.error}
                for m in panel.members.order_by("position")
            ],
            # Each quality check: what every persona answered in the probe, and the panel's diversity. The
            # judge's scores are in persona_checks.json.
            "quality_checks": [
                {
                    "id": check.pk,
                    "created_at": check.created_at,
                    "finished_at": check.finished_at,
                    "credits_per_persona": check.unit_cost,
                    "diversity": check.diversity,
                    "members": [
                        {
                            "persona_id": m.persona_id,
                            "state": m.state,
                            "error": m.error,
                            "answers": m.answers,
                            "items": m.items,
                            "persona_check_id": m.persona_check_id,
                        }
                        for m in check.members.order_by("position")
                    ],
                }
                for check in panel.quality_checks.order_by("id")
            ],
        }


def populations_rows(user) -> Iterable[dict]:
    for item in PopulationFile.objects.filter(owner=user).order_by("id"):
        yield {"id": item.pk, "name": item.name, "filename": item.filename, "created_at": item.created_at, **item.data}


def microdata_rows(user) -> Iterable[dict]:
    for item in MicrodataFile.objects.filter(owner=user).order_by("id").iterator(chunk_size=5):
        yield {"id": item.pk, "name": item.name, "filename": item.filename, "created_at": item.created_at, **item.data}


def references_rows(user) -> Iterable[dict]:
    for item in Reference.objects.filter(owner=user).order_by("id").iterator(chunk_size=5):
        table = item.table or {}
        yield {
            "id": item.pk,
            "name": item.name,
            "filename": item.filename,
            "size": item.size,
            "row_count": item.row_count,
            "created_at": item.created_at,
            "encoding": table.get("encoding"),
            "columns": table.get("columns") or [],
            "rows": table.get("rows") or [],
            "suggested_mapping": item.suggested,
            "mapping": item.mapping,
        }


def validations_rows(user) -> Iterable[dict]:
    for item in Validation.objects.filter(owner=user).order_by("id").iterator(chunk_size=20):
        yield {
            "id": item.pk,
            "reference_id": item.reference_id,
            "reference_name": item.reference_name,
            "mapping": item.mapping,
            "size": item.size,
            "seed": item.seed,
            "state": item.state,
            "error": item.error,
            "panel_id": item.panel_id,
            "survey_id": item.survey_id,
            "run_id": item.run_id,
            "created_at": item.created_at,
            "finished_at": item.finished_at,
            "scorecard": item.scorecard,
        }


def briefs_rows(user) -> Iterable[dict]:

    briefs = GenerationBrief.objects.filter(owner=user).prefetch_related("sources").order_by("id")
    for brief in briefs.iterator(chunk_size=200):
        yield {
            "id": brief.pk,
            "description": brief.description,
            "count": brief.count,
            "age_min": brief.age_min,
            "age_max": brief.age_max,
            "locations": brief.locations,
            "gender_mix": brief.gender_mix,
            "image_description": brief.image_description,
            "folder_id": brief.folder_id,
            "created_at": brief.created_at,
            "sources": [
                {
                    "kind": source.kind,
                    "filename": source.filename,
                    "size": source.size,
                    "text": source.text,
                    "summary": source.summary,
                    "segments": source.segments,
                    "truncated": source.truncated,
                    "created_at": source.created_at,
                }
                for source in brief.sources.all()
            ],
        }


def ledger_rows(user) -> Iterable[dict]:

    rows = CreditTransaction.objects.filter(user_id=user.pk).order_by("id")
    for row in rows.iterator(chunk_size=500):
        yield {
            "id": row.pk,
            "created_at": row.created_at,
            "kind": row.kind,
            "delta": row.delta,
            "balance_after": row.balance_after,
            "reference": row.reference,
            "description": row.description,
            "refund_of": row.refund_of_id,
            "by_staff": row.created_by_id is not None,
        }


USAGE_FIELDS = (
    "id",
    "created_at",
    "feature",
    "provider",
    "model",
    "model_alias",
    "focus_group_id",
    "persona_id",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "usage_source",
    "status",
    "error_class",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "simulated",
)


def usage_rows(user) -> Iterable[dict]:

    rows = UsageEvent.objects.filter(user_id=user.pk).order_by("id").values(*USAGE_FIELDS, "job_id")
    for row in rows.iterator(chunk_size=1000):
        row["job_id"] = str(row["job_id"]) if row["job_id"] else None
        yield row


def jobs_rows(user) -> Iterable[dict]:

    for job in Job.objects.filter(owner=user).order_by("created_at").iterator(chunk_size=500):
        yield {
            "id": str(job.pk),
            "kind": job.kind,
            "label": kind_label(job.kind),
            "state": job.state,
            # Keys starting with "_" are working data (an uploaded image…), not part of the request.
            "params": {k: v for k, v in (job.params or {}).items() if not str(k).startswith("_")},
            "progress_message": job.progress_message,
            "error": job.error,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
        }


def history_rows(user) -> Iterable[dict]:

    entries = AuditEntry.objects.filter(subject_user=user).order_by("created_at", "id")
    for entry in entries.iterator(chunk_size=500):
        # Who did it, without naming staff: their email is their personal data, not this user's.
        if entry.actor_id is None:
            by = "system"
        elif entry.actor_id == user.pk:
            by = "you"
        else:
            by = "Cohorta staff"
        yield {
            "created_at": entry.created_at,
            "action": entry.action,
            "label": entry.get_action_display(),
            "by": by,
            "reason": entry.reason,
            "before": entry.before,
            "after": entry.after,
        }


def _asset_name(asset) -> str:
    base = get_valid_filename(posixpath.basename(asset.filename.replace("\\", "/"))) or "file"
    # The stored copy is re-encoded (a PNG upload may be stored as WEBP): keep its real extension.
    stored_ext = posixpath.splitext(asset.image.name)[1]
    if stored_ext and not base.lower().endswith(stored_ext.lower()):
        base = f"{posixpath.splitext(base)[0]}{stored_ext}"
    return f"files/sessions/{asset.focus_group_id}/{asset.pk}-{base}"


# --- the whole archive -------------------------------------------------------------------------


def export_write(*, user, storage, name: str, progress: Progress, ttl_days: int) -> tuple[str, int, dict]:
    """Build the archive in a temporary file and save it to ``storage`` as ``name``.

    Returns (the stored name, its size in bytes, counts per kind). ``progress(done, total, message)``
    is called between parts; it raises JobCancelled to stop, and nothing is stored then.
    """

    sessions = list(FocusGroup.objects.filter(owner=user).order_by("id").only("id", "title"))
    assets = list(Asset.objects.filter(focus_group__owner=user).exclude(image="").order_by("focus_group_id", "id"))
    total = 6 + len(sessions) + (1 if assets else 0)
    done = 0

    def step(message: str) -> None:
        nonlocal done
        progress(done, total, message)
        done += 1

    counts: dict[str, int] = {}
    # An anonymous temporary file: nothing is left behind if the worker dies mid-way.
    with tempfile.TemporaryFile() as tmp:
        with _Archive(tmp) as archive:
            _write_parts(archive, user=user, sessions=sessions, assets=assets, step=step, counts=counts)
            archive.text(
                "README.txt",
                README.format(exported_at=f"{timezone.now():%Y-%m-%d %H:%M} UTC", user_id=user.pk, ttl_days=ttl_days),
            )
            archive.json(
                "manifest.json",
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "exported_at": timezone.now(),
                    "user_id": user.pk,
                    "counts": counts,
                    "files": [*archive.entries, "manifest.json"],
                },
            )
        size = tmp.seek(0, 2)
        tmp.seek(0)
        # The last chance to stop: once saved, the file is recorded and offered for download.
        progress(total, total, "Saving your export")
        stored = storage.save(name, File(tmp, name=posixpath.basename(name)))
    return stored, size, counts


def _write_parts(archive: _Archive, *, user, sessions, assets, step: Callable[[str], None], counts: dict) -> None:

    step("Your profile")
    archive.json("profile.json", profile_data(user))
    folders = folders_data(user)
    archive.json("folders.json", folders)
    counts["folders"] = len(folders)

    step("Your personas")
    counts["personas"] = archive.json_list("personas.json", personas_rows(user))
    counts["persona_checks"] = archive.json_list("persona_checks.json", persona_checks_rows(user))
    counts["persona_briefs"] = archive.json_list("persona_briefs.json", briefs_rows(user))
    counts["panels"] = archive.json_list("panels.json", panels_rows(user))
    counts["populations"] = archive.json_list("populations.json", populations_rows(user))
    counts["microdata"] = archive.json_list("microdata.json", microdata_rows(user))
    counts["references"] = archive.json_list("references.json", references_rows(user))
    counts["validations"] = archive.json_list("validations.json", validations_rows(user))

    counts["sessions"] = len(sessions)
    counts["messages"] = 0
    for index, focus_group in enumerate(sessions, start=1):
        step(f"Session {index} of {len(sessions)}")
        data = everything(focus_group)
        counts["messages"] += len(data["messages"])
        slug = slugify(focus_group.title)[:60].strip("-") or "session"
        archive.json(f"sessions/{focus_group.pk}-{slug}.json", data)

    step("Your credit ledger")
    counts["ledger_entries"] = archive.json_list("credit_ledger.json", ledger_rows(user))
    step("Your AI usage")
    counts["usage_events"] = archive.json_list("usage_events.json", usage_rows(user))
    step("Jobs and account history")
    counts["jobs"] = archive.json_list("jobs.json", jobs_rows(user))
    counts["account_history"] = archive.json_list("account_history.json", history_rows(user))

    counts["files"] = 0
    if assets:
        step(f"{len(assets)} uploaded file{'s' if len(assets) != 1 else ''}")
        for asset in assets:
            try:
                with asset.image.open("rb") as source:
                    archive.copy(_asset_name(asset), source)
                counts["files"] += 1
            except OSError:  # a file lost on disk should not cost the user the rest of their data
                logger.warning("Asset %s: stored file %s is missing from the export", asset.pk, asset.image.name)
    step("Packing the archive")
