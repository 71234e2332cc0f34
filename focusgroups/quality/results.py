"""A session's quality results in one shape, for the report page, the exports and the API: the conformity check
(``conformity.py``) and the judge's scores per participant (``judge.py``)."""

from django.urls import reverse

from cohorta.core.models import get_app_settings
from cohorta.jobs.models import JobState
from focusgroups.models import FocusGroup, FocusGroupStatus
from focusgroups.quality import conformity, judge


def _job(job) -> dict | None:
    if job is None:
        return None
    return {
        "id": str(job.pk),
        "state": job.state,
        "active": job.is_active,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "message": job.progress_message,
        "error": job.error if job.state in (JobState.FAILED, JobState.INTERRUPTED) else "",
        "result": job.result if job.state == JobState.DONE else None,
        "created_at": job.created_at,
    }


def session_quality(*, focus_group: FocusGroup) -> dict:
    check = conformity.conformity_get(focus_group)
    settings = get_app_settings()
    rows = []
    for row in judge.session_checks(focus_group=focus_group):
        persona, found = row["persona"], row["check"]
        rows.append(
            {
                "persona_id": persona.pk,
                "name": persona.name,
                "checked": found is not None,
                "adherence": found.adherence if found else None,
                "consistency": found.consistency if found else None,
                "adherence_reason": found.adherence_reason if found else "",
                "consistency_reason": found.consistency_reason if found else "",
                "flagged": found.flagged if found else False,
                "flag_reasons": found.flag_reasons if found else [],
                "failed": bool(found and found.failed),
                "error": found.error if found else "",
                "evidence_count": found.evidence_count if found else 0,
                "simulated": found.simulated if found else False,
                "checked_at": found.created_at if found else None,
            }
        )
    spoke = sum(1 for pairs in judge.session_evidence(focus_group=focus_group).values() if pairs)
    return {
        "conformity": conformity.conformity_result(check) if check is not None else None,
        "judge": {
            "bar": settings.quality_judge_bar,
            "credits_per_participant": settings.quality_credits_per_persona,
            "price": settings.quality_credits_per_persona * spoke,
            "participants_who_spoke": spoke,
            "can_start": focus_group.status == FocusGroupStatus.ENDED and not focus_group.archived and spoke > 0,
            "checked": sum(1 for row in rows if row["checked"] and not row["failed"]),
            "flagged": sum(1 for row in rows if row["flagged"]),
            "job": _job(judge.session_check_job_latest(focus_group=focus_group)),
            "participants": rows,
        },
    }


def quality_context(focus_group: FocusGroup) -> dict:
    """What the report page's Quality section needs."""
    return {
        "quality": session_quality(focus_group=focus_group),
        "quality_url": reverse("focusgroups:quality", args=[focus_group.pk]),
    }
