"""Reading a panel's quality check (panels/quality.py): what the panel page, the API and the panel's JSON
export show. Reads only."""

from statistics import fmean

from django.utils import timezone

from cohorta.core.models import get_app_settings
from cohorta.jobs.fanout import STATES
from panels.diversity import LOW_VARIANCE_RATIO, ratio_width
from panels.models import MemberState, Panel, QualityCheck, QualityCheckMember
from panels.quality import MEMBERS, PROBE_QUESTIONS, progress_message, quality_cost

FAILURES_SHOWN = 50
_TRAIT_LABELS = {
    "openness": "Openness",
    "conscientiousness": "Conscientiousness",
    "extraversion": "Extraversion",
    "agreeableness": "Agreeableness",
    "neuroticism": "Neuroticism",
}


def latest_quality_check(panel: Panel) -> QualityCheck | None:
    return QualityCheck.objects.filter(panel=panel).select_related("job").order_by("-created_at", "-id").first()


def _mean(values: list[int]) -> float | None:
    return round(fmean(values), 1) if values else None


def quality_report(check: QualityCheck, *, with_members: bool = False) -> dict:
    """One check as people read it: progress, mean scores, the flagged personas with the judge's reason,
    failures, and the diversity with its bars' widths. ``with_members`` adds every persona's answers,
    items and scores (the export)."""
    counts = MEMBERS.counts(check) if check.pk else {"total": 0, **dict.fromkeys(STATES, 0)}
    job = check.job
    active = bool(job and job.is_active)
    bar = get_app_settings().quality_judge_bar
    members = list(
        QualityCheckMember.objects.filter(quality_check=check)
        .select_related("persona", "persona_check")
        .order_by("position")
    )
    scored = [m for m in members if m.state == MemberState.DONE and m.persona_check is not None]
    checks = [m.persona_check for m in scored if m.persona_check is not None]
    flagged = [
        {
            "persona_id": member.persona_id,
            "name": member.persona.name if member.persona else "A deleted persona",
            "adherence": member.persona_check.adherence,
            "consistency": member.persona_check.consistency,
            "reason": " ".join(member.persona_check.flag_reasons),
        }
        for member in scored
        if member.persona_check is not None and member.persona_check.flagged
    ]
    failures = [
        {
            "persona_id": member.persona_id,
            "name": member.persona.name if member.persona else f"Persona {member.position + 1}",
            "error": member.error,
        }
        for member in members
        if member.state == MemberState.FAILED
    ]
    elapsed = (timezone.now() - job.started_at).total_seconds() if job and job.started_at else None
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    report = {
        "id": check.pk,
        "job_id": str(job.pk) if job else None,
        "state": job.state if job else "unknown",
        "active": active,
        "created_at": check.created_at,
        "finished_at": check.finished_at,
        "headline": progress_message(counts, elapsed if active else None),
        "percent": round(100 * finished / counts["total"]) if counts["total"] else 0,
        "counts": counts,
        "checked": counts["done"],
        "credits_per_persona": check.unit_cost,
        "credits_spent": check.unit_cost * counts["done"],
        "bar": bar,
        "mean_adherence": _mean([c.adherence for c in checks if c.adherence is not None]),
        "mean_consistency": _mean([c.consistency for c in checks if c.consistency is not None]),
        "flagged": flagged,
        "failures": failures[:FAILURES_SHOWN],
        "failures_more": max(0, len(failures) - FAILURES_SHOWN),
        "stop_reason": check.stop_reason,
        "diversity": _diversity_view(check.diversity or {}),
    }
    if with_members:
        report["questions"] = list(PROBE_QUESTIONS)
        report["members"] = [
            {
                "position": member.position + 1,
                "persona_id": member.persona_id,
                "state": member.state,
                "error": member.error,
                "answers": member.answers,
                "items": member.items,
                "adherence": member.persona_check.adherence if member.persona_check else None,
                "consistency": member.persona_check.consistency if member.persona_check else None,
                "adherence_reason": member.persona_check.adherence_reason if member.persona_check else "",
                "consistency_reason": member.persona_check.consistency_reason if member.persona_check else "",
                "flagged": bool(member.persona_check and member.persona_check.flagged),
                "simulated": member.simulated,
            }
            for member in members
        ]
    return report


def _diversity_view(diversity: dict) -> dict:
    """The stored diversity with what the page draws: each item's bar width and label."""
    if not diversity or "items" not in diversity:
        return diversity
    items = [
        {
            **row,
            "trait_label": _TRAIT_LABELS.get(row["trait"], row["trait"]),
            "width": ratio_width(row["ratio"]),
        }
        for row in diversity["items"]
    ]
    questions = {question["key"]: question["text"] for question in PROBE_QUESTIONS}
    per_question = [
        {"key": key, "question": questions.get(key, key), "distance": value}
        for key, value in (diversity.get("distance_per_question") or {}).items()
    ]
    return {
        **diversity,
        "items": items,
        "per_question": per_question,
        "threshold_width": ratio_width(diversity.get("low_ratio", LOW_VARIANCE_RATIO)),
        "human_width": ratio_width(1.0),
    }


def quality_page(panel: Panel) -> dict:
    """The Quality section of a panel's page: the latest check (or none), what a new one costs, and
    whether one can start now."""
    check = latest_quality_check(panel)
    unit, count, total = quality_cost(panel)
    building = bool(panel.job and panel.job.is_active)
    return {
        "quality": quality_report(check) if check else None,
        "quality_unit": unit,
        "quality_personas": count,
        "quality_total": total,
        "quality_can_start": count > 0 and not building and not (check and check.job and check.job.is_active),
        "quality_building": building,
        "quality_bar": get_app_settings().quality_judge_bar,
    }


def quality_document(panel: Panel) -> dict | None:
    """The latest check for the panel's JSON export (every persona's answers and scores), or None."""
    check = latest_quality_check(panel)
    if check is None:
        return None
    report = quality_report(check, with_members=True)
    for key in ("created_at", "finished_at"):
        if report[key] is not None:
            report[key] = report[key].isoformat()
    report.pop("percent", None)
    return report
