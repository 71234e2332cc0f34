"""What the run's page, the API and the exports show of its quality check: its state and, once it has
ended, each part's numbers with their plain reading (the numbers themselves are ``results``, as stored)."""

from django.urls import reverse

from cohorta.core.models import get_app_settings
from cohorta.jobs.models import JobState
from surveys.models import QualityCheck, Run
from surveys.quality.kappa import reading
from surveys.quality.services import PART_LABELS, check_cost

# Bar colours by Landis–Koch reading (the results page's palette: indigo for good, amber and red for weak).
KAPPA_COLOURS = {
    "poor": "#dc2626",
    "slight": "#f97316",
    "fair": "#f59e0b",
    "moderate": "#a5b4fc",
    "substantial": "#818cf8",
    "almost perfect": "#4f46e5",
}


def latest_check(run: Run) -> QualityCheck | None:
    return (
        QualityCheck.objects.filter(run=run).select_related("job", "retest_run").order_by("-created_at", "-id").first()
    )


def check_state(check: QualityCheck) -> str:
    if check.not_started:
        return "not_started"
    if check.job is None:
        return "waiting"
    return check.job.state


def judge_rows(judge: dict) -> list[dict]:
    """The judge's rows with each persona's page, flagged ones first."""
    rows = []
    for row in judge.get("respondents") or []:
        entry = dict(row)
        if row.get("persona_id"):
            entry["persona_url"] = reverse("personas:detail", args=[row["persona_id"]])
        rows.append(entry)
    return sorted(rows, key=lambda r: (not r.get("flagged"), r.get("adherence") is None, r.get("name") or ""))


def judge_text(judge: dict) -> str:
    if judge.get("error"):
        return judge["error"]
    bar = judge.get("bar", 6)
    flagged = judge.get("flagged", 0)
    text = (
        f"In character {judge['mean_adherence']:.1f}/9 and self-consistent {judge['mean_consistency']:.1f}/9 on "
        f"average over {judge['scored']} respondents (the judge scores 0–9 and, when in doubt, lower)."
    )
    if flagged:
        text += f" {flagged} scored under the bar of {bar} on at least one: read their answers before trusting them."
    else:
        text += f" Nobody scored under the bar of {bar}."
    return text


def chart_data(check: QualityCheck) -> dict:
    """What the κ chart reads (#survey-quality): per scored item its κ and 95% interval, coloured by reading."""
    items = []
    for item in ((check.results or {}).get("retest") or {}).get("items") or []:
        if item.get("kappa") is None:
            continue
        items.append(
            {
                "label": f"Q{item['number']}",
                "text": item["text"],
                "kappa": item["kappa"],
                "low": item.get("low"),
                "high": item.get("high"),
                "reading": item["reading"],
                "colour": KAPPA_COLOURS.get(item["reading"], "#6366f1"),
            }
        )
    return {"kappa": items}


def quality_context(run: Run) -> dict:
    """The Quality section of the run's page."""
    check = latest_check(run)
    retest_of = QualityCheck.objects.filter(retest_run=run).select_related("run").first()
    context: dict = {"quality_check": check, "quality_retest_of": retest_of}
    answered = run.respondents.filter(state="done").count()
    context["quality_cost"] = check_cost(questions=run.questions, respondents=answered) if answered else None
    context["quality_answered"] = answered
    if check is None:
        context["quality_state"] = "none"
        return context
    state = check_state(check)
    results = check.results or {}
    context["quality_state"] = state
    context["quality_active"] = state in ("waiting", JobState.PENDING, JobState.QUEUED, JobState.RUNNING)
    context["quality_skipped"] = [
        {"label": PART_LABELS.get(part, part), "reason": reason}
        for part, reason in (results.get("skipped") or {}).items()
    ]
    if results.get("finished_at"):
        retest = results.get("retest")
        if retest and retest.get("mean_kappa") is not None:
            retest["mean_reading"] = reading(retest["mean_kappa"])
        for item in (results.get("leading") or {}).get("items") or []:
            if item.get("share") is not None:
                # On a track whose middle is no shift and whose ends are half the scale either way.
                item["track"] = round(max(0.0, min(100.0, 50 + item["share"] * 100)), 1)
        judge = results.get("judge")
        if judge:
            judge["rows"] = judge_rows(judge)
            judge["text"] = judge_text(judge)
            judge["flagged_rows"] = [row for row in judge["rows"] if row.get("flagged")]
        context.update(
            quality_results=results,
            quality_chart=chart_data(check),
            quality_simulated=run.respondents.filter(simulated=True).exists(),
        )
    context["quality_bar"] = get_app_settings().quality_judge_bar
    return context


def check_data(check: QualityCheck | None) -> dict | None:
    """A check as the API and the JSON export give it."""
    if check is None:
        return None
    return {
        "id": check.pk,
        "state": check_state(check),
        "job_id": str(check.job_id) if check.job_id else None,
        "error": check.job.error if check.job is not None else "",
        "not_started": check.not_started,
        "parts": check.parts,
        "retest_run_id": check.retest_run_id,
        "respondents": check.respondents,
        "credits": {
            "reserved": check.reserved,
            "retest_per_respondent": check.retest_unit_cost,
            "per_pass_per_respondent": check.pass_unit_cost,
            "settled": check.settled,
        },
        "reference_variances": check.reference_variances,
        "twins": check.twins,
        "results": {k: v for k, v in (check.results or {}).items() if k != "own_done"},
        "created_at": check.created_at.isoformat(),
    }
