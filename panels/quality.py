"""A panel's quality check: is each persona in character and consistent, and is the panel as varied as people?

Starting one (``quality_check_start``) checks the panel is written and not already being checked,
reserves ``AppSettings.quality_credits_per_persona`` per persona (402 before any work when short) and
creates the ``panel_quality`` job. It runs as a panel build does (panels/runner.py, cohorta/jobs/fanout.py):
the job hands out the first members and returns; each member's task claims its member, has the persona
answer a fixed probe interview and ten Big Five items in one structured call (``quality_probe``,
panels/prompts/quality_probe.md), then has the quality judge score the answers
(``personas.quality.judge_persona``: a PersonaCheck on the persona's page). A member whose probe or
judgement fails is refunded at once. The task that finds nobody left measures the panel's diversity
(panels/diversity.py: item variance against psych/bfi, mean pairwise distance of the answers' embeddings)
and finishes the job.

Credits: ``panel-quality:<id>:reserve``; a failed member is refunded under ``…:refund:<member>``; what is
neither delivered nor refunded when the check ends (cancelled, or its worker died) under ``…:refund:rest``.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import CreditTransaction
from billing.services import credits_refund, credits_refund_unused, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, QuotaExceeded
from cohorta.jobs.beat import SideBeat
from cohorta.jobs.fanout import Fanout, eta_text
from cohorta.jobs.models import ACTIVE_STATES, Job, JobState
from cohorta.jobs.registry import HANDED_OFF
from cohorta.jobs.services import job_create, job_finish, job_progress_report
from llm.errors import LLMError
from llm.gateway import complete, embed, embedding_model_name
from llm.prompts import render_prompt
from panels.diversity import diversity_summary, item_variances, mean_pairwise_distance, reference_items
from panels.models import MemberState, Panel, QualityCheck, QualityCheckMember
from personas.models import CheckSource, Persona
from personas.quality import judge_persona, profile_text

logger = logging.getLogger(__name__)

JOB_KIND = "panel_quality"
PROBE_FEATURE = "quality_probe"
DIVERSITY_FEATURE = "quality_diversity"
Dispatch = Callable[[int], None]

# The probe interview: who they are, what they value, a purchase and a switching decision, and the values
# question again in other words (the judge's self-consistency test). Keys are the answers' keys.
PROBE_QUESTIONS: tuple[dict, ...] = (
    {"key": "weekday", "text": "Tell me a bit about yourself: what does an ordinary weekday look like for you?"},
    {"key": "values", "text": "What matters most to you in life, and why?"},
    {
        "key": "purchase",
        "text": "Think of the last time you spent more than usual on something. What was it, and what made you "
        "decide to buy it?",
    },
    {
        "key": "switch",
        "text": "A brand you don't know offers something you buy every week, for 20% more than you pay now, and "
        "promises better quality. Would you switch? Why or why not?",
    },
    {
        "key": "values_again",
        "text": "If you had to name the one thing you care about above everything else, what would it be?",
    },
)
ANSWER_CHARS = 1200
SCALE = [1, 2, 3, 4, 5, 6]


def probe_schema() -> dict:
    keys = [question["key"] for question in PROBE_QUESTIONS]
    items = [item["key"] for item in reference_items()]
    return {
        "type": "object",
        "properties": {
            "answers": {
                "type": "object",
                "properties": {key: {"type": "string", "maxLength": ANSWER_CHARS} for key in keys},
                "required": keys,
                "additionalProperties": False,
            },
            # An enum: a number off the 1–6 scale is an invalid answer, not one clamped into range.
            "items": {
                "type": "object",
                "properties": {key: {"type": "integer", "enum": SCALE} for key in items},
                "required": items,
                "additionalProperties": False,
            },
        },
        "required": ["answers", "items"],
        "additionalProperties": False,
    }


MEMBERS = Fanout(
    item_model=QualityCheckMember,
    parent_model=QualityCheck,
    parent_field="quality_check",
    parallelism=lambda: get_app_settings().panel_parallelism,
)
QUOTA_MESSAGE = "Not checked: your monthly AI budget ran out. Your credits for this persona were refunded."


# --- starting ---------------------------------------------------------------------------------------


def reserve_key(check: QualityCheck) -> str:
    return f"panel-quality:{check.pk}:reserve"


def checkable_personas(panel: Panel) -> list[Persona]:
    """The panel's written personas, in the panel's order."""
    return [
        member.persona
        for member in panel.members.filter(state=MemberState.DONE, persona__isnull=False)
        .select_related("persona")
        .order_by("position")
        if member.persona is not None
    ]


def quality_cost(panel: Panel) -> tuple[int, int, int]:
    """(credits per persona, personas to check, total)."""
    unit = get_app_settings().quality_credits_per_persona
    count = panel.members.filter(state=MemberState.DONE, persona__isnull=False).count()
    return unit, count, unit * count


def running_check(panel: Panel) -> QualityCheck | None:
    return QualityCheck.objects.filter(panel=panel, job__state__in=ACTIVE_STATES).select_related("job").first()


def quality_check_start(*, panel: Panel) -> QualityCheck:
    """Check the panel can be checked, reserve the credits and create the job; raises before any work."""
    owner = panel.owner
    if panel.job_id is not None and Job.objects.filter(pk=panel.job_id, state__in=ACTIVE_STATES).exists():
        raise ApplicationError(
            "The panel is still being written. Check its quality once every persona is written.",
            code="panel_busy",
            status_code=409,
        )
    if running_check(panel) is not None:
        raise ApplicationError(
            "A quality check of this panel is already running: its results appear on the panel's page.",
            code="quality_check_running",
            status_code=409,
        )
    personas = checkable_personas(panel)
    if not personas:
        raise ApplicationError(
            "Nobody in this panel has a written persona to check. Build the panel first.",
            code="validation_error",
        )
    unit = get_app_settings().quality_credits_per_persona
    with transaction.atomic():
        check = QualityCheck.objects.create(panel=panel, size=len(personas), unit_cost=unit)
        QualityCheckMember.objects.bulk_create(
            QualityCheckMember(quality_check=check, position=index, persona=persona)
            for index, persona in enumerate(personas)
        )
        if unit:
            credits_spend(
                user=owner,
                amount=unit * len(personas),
                idempotency_key=reserve_key(check),
                reference=f"panel:{panel.pk}:quality:{check.pk}",
                description=f"Quality check of {len(personas):,} personas: {panel.name}"[:200],
            )
        check.job = job_create(
            owner=owner,
            kind=JOB_KIND,
            target=panel,
            total=len(personas),
            params={"quality_check_id": check.pk, "panel_id": panel.pk},
            message="Waiting to start",
        )
        check.save(update_fields=["job"])
    return check


# --- credits ---------------------------------------------------------------------------------------


def _refund_member(check: QualityCheck, member: QualityCheckMember) -> None:
    reserve = CreditTransaction.objects.filter(idempotency_key=reserve_key(check)).first()
    if reserve is None or not check.unit_cost:
        return
    credits_refund(
        spend=reserve,
        amount=check.unit_cost,
        idempotency_key=f"panel-quality:{check.pk}:refund:{member.pk}",
        description=f"Refund: persona {member.position + 1} of a quality check could not be checked",
    )


def quality_settle(check: QualityCheck) -> int:
    """Close every member still open and refund what was neither delivered nor refunded. Idempotent."""
    MEMBERS.close_open(check, "Not checked: the quality check stopped.")
    delivered = QualityCheckMember.objects.filter(quality_check=check, state=MemberState.DONE).count()
    return credits_refund_unused(
        spend_key=reserve_key(check),
        kept=delivered * check.unit_cost,
        idempotency_key=f"panel-quality:{check.pk}:refund:rest",
        description="Refund: personas of a quality check not checked",
    )


# --- one member ------------------------------------------------------------------------------------


def _fail(check: QualityCheck, member: QualityCheckMember, reason: str, *, from_states=(MemberState.RUNNING,)):
    return MEMBERS.fail(member.pk, reason, from_states=from_states, on_fail=partial(_refund_member, check, member))


def _job_running(check: QualityCheck) -> bool:
    if check.job_id is None:
        return False
    return Job.objects.filter(pk=check.job_id, state=JobState.RUNNING, cancel_requested=False).exists()


def _member_beat(member_id: int, job_id) -> SideBeat:
    def beat() -> None:
        now = timezone.now()
        QualityCheckMember.objects.filter(pk=member_id, state=MemberState.RUNNING).update(heartbeat_at=now)
        Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=now)

    return SideBeat(beat, name=f"panel-quality-beat-{member_id}")


def probe_messages(persona: Persona) -> list[dict]:
    prompt = render_prompt(
        "panels:quality_probe",
        {
            "persona": persona,
            "profile": profile_text(persona),
            "questions": PROBE_QUESTIONS,
            "items": reference_items(),
        },
    )
    return [{"role": "user", "content": prompt}]


def probe_evidence(answers: dict, items: dict) -> list[tuple[str, str]]:
    """What the judge reads: each question with its answer, then the statements with the numbers given."""
    evidence = [(question["text"], answers.get(question["key"], "")) for question in PROBE_QUESTIONS]
    statements = "; ".join(
        f"“{item['text']}” {items[item['key']]}" for item in reference_items() if item["key"] in items
    )
    if statements:
        evidence.append(
            ("How accurately do these statements describe you (1 = very inaccurate, 6 = very accurate)?", statements)
        )
    return evidence


def member_check(*, member_id: int, dispatch: Dispatch) -> str:
    """Check one persona, then move the check on. Safe to call twice: only one claim wins."""
    now = timezone.now()
    claimed = QualityCheckMember.objects.filter(pk=member_id, state=MemberState.QUEUED).update(
        state=MemberState.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return "not-claimed"
    member = QualityCheckMember.objects.select_related(
        "quality_check", "quality_check__panel", "quality_check__panel__owner", "persona"
    ).get(pk=member_id)
    check = member.quality_check
    try:
        with _member_beat(member.pk, check.job_id):
            return _check_one(check, member)
    finally:
        quality_advance(check, dispatch=dispatch)


def _check_one(check: QualityCheck, member: QualityCheckMember) -> str:
    panel = check.panel
    if check.stop_reason == "quota":
        _fail(check, member, QUOTA_MESSAGE)
        return "failed"
    if not _job_running(check):
        return "stopped"  # the check's settlement closes and refunds it
    persona = member.persona
    if persona is None:
        _fail(check, member, "Not checked: the persona was deleted. Your credits for it were refunded.")
        return "failed"
    try:
        probe = complete(
            feature=PROBE_FEATURE,
            messages=probe_messages(persona),
            schema=probe_schema(),
            schema_name="quality_probe",
            user=panel.owner,
            job=check.job_id,
            persona_id=persona.pk,
        )
        answers, items = probe.data["answers"], probe.data["items"]
        judged = judge_persona(
            persona=persona,
            evidence=probe_evidence(answers, items),
            user=panel.owner,
            job=check.job_id,
            source_kind=CheckSource.PANEL,
            source_id=panel.pk,
            source_label=f"Panel: {panel.name}",
        )
    except QuotaExceeded:
        QualityCheck.objects.filter(pk=check.pk).update(stop_reason="quota")
        _fail(check, member, QUOTA_MESSAGE)
        return "failed"
    except (LLMError, ApplicationError) as exc:
        _fail(check, member, f"{exc.message} Your credits for this persona were refunded.")
        return "failed"
    except Exception:
        logger.exception("Quality check member %s crashed", member.pk)
        _fail(check, member, "An unexpected error stopped this check. Your credits for this persona were refunded.")
        return "failed"
    fields = {"answers": answers, "items": items, "persona_check": judged, "simulated": probe.simulated}
    if judged.failed:
        # The answers are kept (they still count for nothing: only checked personas make the diversity).
        QualityCheckMember.objects.filter(pk=member.pk).update(**fields)
        _fail(check, member, f"{judged.error} Your credits for this persona were refunded.")
        return "failed"
    moved = QualityCheckMember.objects.filter(pk=member.pk, state=MemberState.RUNNING).update(
        state=MemberState.DONE, finished_at=timezone.now(), error="", **fields
    )
    return "done" if moved else "discarded"


# --- the check -------------------------------------------------------------------------------------


def progress_message(counts: dict[str, int], elapsed: float | None = None) -> str:
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    message = f"{counts['done']:,} of {counts['total']:,} personas checked"
    if counts["failed"]:
        message += f", {counts['failed']:,} failed"
    remaining = counts["total"] - finished
    if elapsed is not None and finished and remaining:
        message += f" · {eta_text(elapsed / finished * remaining)}"
    return message


def _fail_unchecked(check: QualityCheck) -> None:
    waiting = (MemberState.PENDING, MemberState.QUEUED)
    for member in QualityCheckMember.objects.filter(quality_check=check, state__in=waiting):
        _fail(check, member, QUOTA_MESSAGE, from_states=waiting)


def quality_advance(check: QualityCheck, *, dispatch: Dispatch) -> bool:
    """Hand out members while there is room, report progress; when nobody is left, measure the diversity
    and finish the job (once: the first caller to mark the check finished does it). Returns whether the
    check is still running."""
    job = Job.objects.filter(pk=check.job_id).first() if check.job_id is not None else None
    if job is None or job.state != JobState.RUNNING:
        return False
    if QualityCheck.objects.filter(pk=check.pk, stop_reason="quota").exists():
        _fail_unchecked(check)
    else:
        MEMBERS.hand_out(check, dispatch)
    counts = MEMBERS.counts(check)
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    if counts["pending"] + counts["queued"] + counts["running"]:
        elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else None
        job_progress_report(
            job_id=job.pk, done=finished, total=counts["total"], message=progress_message(counts, elapsed)
        )
        return True
    if not QualityCheck.objects.filter(pk=check.pk, finished_at__isnull=True).update(finished_at=timezone.now()):
        return False  # another task is finishing it
    job_progress_report(job_id=job.pk, done=finished, total=counts["total"], message="Measuring the panel's diversity")
    try:
        diversity = measure_diversity(check, user=check.panel.owner, job=job)
    except Exception:
        # The personas' scores are in: a failure measuring the diversity must not lose them.
        logger.exception("Quality check %s: measuring the diversity failed", check.pk)
        diversity = {"error": "The panel's diversity could not be measured: an unexpected error (logged)."}
    QualityCheck.objects.filter(pk=check.pk).update(diversity=diversity)
    _finish(check, job, counts)
    return False


def _finish(check: QualityCheck, job: Job, counts: dict[str, int]) -> None:
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    refunded = quality_settle(check)
    if refunded:
        logger.warning("Quality check %s: refunded %s credits left over at the end", check.pk, refunded)
    job_finish(
        job=job,
        state=JobState.DONE,
        result={
            "quality_check_id": check.pk,
            "panel_id": check.panel_id,
            **{key: counts[key] for key in ("total", "done", "failed", "cancelled")},
        },
        progress_done=finished,
        progress_total=counts["total"],
        progress_message=progress_message(counts),
    )


def measure_diversity(check: QualityCheck, *, user=None, job=None) -> dict:
    """The panel's diversity over the personas checked: their items' variance against psych/bfi, and the
    mean pairwise distance of their answers per probe question (one embedding per answer). An embedding
    failure leaves the distance out, with the reason, and keeps the rest."""
    done = list(QualityCheckMember.objects.filter(quality_check=check, state=MemberState.DONE).order_by("position"))
    items = item_variances([member.items for member in done])
    distances: dict[str, float | None] = {}
    error, model = "", ""
    if len(done) >= 2:
        try:
            model = embedding_model_name(DIVERSITY_FEATURE)
            for question in PROBE_QUESTIONS:
                texts = [(member.answers.get(question["key"]) or "").strip() for member in done]
                texts = [text for text in texts if text]
                if len(texts) < 2:
                    distances[question["key"]] = None
                    continue
                vectors = embed(feature=DIVERSITY_FEATURE, texts=texts, user=user, job=job)
                distances[question["key"]] = mean_pairwise_distance(vectors)
        except QuotaExceeded:
            distances, error = {}, "Not measured: your monthly AI budget ran out."
        except LLMError as exc:
            distances, error = {}, f"Not measured: {exc.message}"
    summary = diversity_summary(items, distances, embedding_model=model)
    summary["personas"] = len(done)
    summary["distance_error"] = error
    return summary


def quality_execute(job, ctx, *, dispatch: Dispatch):
    """The check's job: hand out the first members and return; their tasks carry it on."""
    check = QualityCheck.objects.select_related("panel").get(pk=job.params["quality_check_id"])
    ctx.check_cancelled()
    quality_advance(check, dispatch=dispatch)
    return HANDED_OFF


def quality_watch(check: QualityCheck, *, dispatch: Dispatch) -> bool:
    """The reaper's look at a check gone quiet: members whose worker died or whose task was lost are
    failed and refunded; then the check is moved on."""
    for member in MEMBERS.dead(check):
        _fail(check, member, "The worker checking this persona stopped responding. Your credits were refunded.")
    for member in MEMBERS.lost(check):
        _fail(
            check,
            member,
            "Not checked: its task was lost on the way to a worker. Your credits were refunded.",
            from_states=(MemberState.QUEUED,),
        )
    check.refresh_from_db()
    job = Job.objects.filter(pk=check.job_id, state=JobState.RUNNING).first() if check.job_id else None
    stale = timezone.now() - timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)
    if job is not None and check.finished_at is not None and check.finished_at < stale:
        # The task finishing it died while measuring the diversity: finish with what was stored.
        _finish(check, job, MEMBERS.counts(check))
        return True
    quality_advance(check, dispatch=dispatch)
    return True
