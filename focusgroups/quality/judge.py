"""The quality judge on a finished session: how well each participant stayed in character and agreed with
themselves, judged on what they said there (each moderator question and their answer to it).

``session_check_start`` reserves App settings' quality credits per participant who spoke and queues one job;
the job judges the participants at once (``personas.quality.judge_persona``, one call each, at most
``FOCUS_GROUP_PRIVATE_PARALLELISM`` at a time) and refunds the unit of every check that failed. A judge that
answers garbage leaves a failed check with its reason, never a score. The checks are ``PersonaCheck`` rows with
``source_kind="session"``: they show on the persona's page as well as in the session's report."""

import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction

from billing.services import credits_refund_unused, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, QuotaExceeded
from cohorta.jobs.errors import JobFailure
from cohorta.jobs.models import ACTIVE_STATES, Job
from cohorta.jobs.registry import job_kind
from cohorta.jobs.selectors import jobs_for_target
from cohorta.jobs.services import job_create
from focusgroups.models import FocusGroup, FocusGroupStatus, Message, MessageRole, MessageStatus
from personas.models import CheckSource, Persona, PersonaCheck
from personas.quality import checks_for, judge_persona

logger = logging.getLogger(__name__)

JOB_KIND = "session_quality_check"
_ASKING = (MessageRole.RESEARCHER, MessageRole.MODERATOR)


def session_evidence(*, focus_group: FocusGroup) -> dict[int, list[tuple[str, str]]]:
    """{persona id: [(the moderator's question, their answer), …]} from the session's complete answers. A moderated
    answer pairs with the message it replied to; an autonomous one with the moderator line just before it."""
    evidence: dict[int, list[tuple[str, str]]] = {}
    asked = ""
    messages = (
        Message.objects.filter(focus_group=focus_group, status__in=[MessageStatus.COMPLETE, MessageStatus.RETRIED])
        .select_related("reply_to")
        .order_by("sequence")
    )
    for message in messages:
        if message.role in _ASKING:
            asked = message.content
        elif message.role == MessageRole.PERSONA and message.persona_id and message.status == MessageStatus.COMPLETE:
            question = message.reply_to.content if message.reply_to_id and message.reply_to else asked
            evidence.setdefault(message.persona_id, []).append((question, message.content))
    return evidence


def _jobs(focus_group: FocusGroup):
    return jobs_for_target(target=focus_group, kind=JOB_KIND)


def session_check_job_latest(*, focus_group: FocusGroup) -> Job | None:
    return _jobs(focus_group).order_by("-created_at").first()


def session_check_start(*, focus_group: FocusGroup) -> Job:
    """Judge every participant who spoke in the ended session; one job, charged now. A check already waiting or
    running is returned rather than doubled."""
    if focus_group.archived:
        raise ApplicationError("This session is archived. Restore it to check it.", code="archived", status_code=409)
    if focus_group.status != FocusGroupStatus.ENDED:
        raise ApplicationError(
            "Quality checks read a finished discussion: end the session first, then check it.",
            code="not_ended",
            status_code=409,
        )
    latest = session_check_job_latest(focus_group=focus_group)
    if latest is not None and latest.state in ACTIVE_STATES:
        return latest
    spoke = [pid for pid, pairs in session_evidence(focus_group=focus_group).items() if pairs]
    participants = list(focus_group.participants.filter(persona_id__in=spoke).values_list("persona_id", flat=True))
    if not participants:
        raise ApplicationError(
            "Nobody answered in this session, so there is nothing to judge.", code="nothing_to_check", status_code=409
        )
    unit = get_app_settings().quality_credits_per_persona
    with transaction.atomic():
        job = job_create(
            owner=focus_group.owner,
            kind=JOB_KIND,
            target=focus_group,
            total=len(participants),
            params={"focus_group_id": focus_group.pk, "persona_ids": participants, "unit_cost": unit},
            message="Waiting to start",
        )
        if unit:
            credits_spend(
                user=focus_group.owner,
                amount=unit * len(participants),
                idempotency_key=f"job:{job.pk}:spend",
                reference=f"focusgroup:{focus_group.pk}",
                description=f"Quality check of “{focus_group.title}” ({len(participants)} participants)",
            )
    return job


def _checks_of_job(job: Job):
    return PersonaCheck.objects.filter(
        source_kind=CheckSource.SESSION,
        source_id=job.params.get("focus_group_id"),
        persona_id__in=job.params.get("persona_ids") or [],
        created_at__gte=job.created_at,
    )


def session_check_abandoned(job: Job) -> None:
    """Interrupted or cancelled before it ran: give back the credits of every participant not scored."""
    scored = _checks_of_job(job).filter(adherence__isnull=False, consistency__isnull=False).count()
    credits_refund_unused(
        spend_key=f"job:{job.pk}:spend",
        kept=int(job.params.get("unit_cost", 0)) * scored,
        idempotency_key=f"job:{job.pk}:refund",
        description="Refund: quality check not finished",
    )


@job_kind(JOB_KIND, label="Session quality check", on_abandon=session_check_abandoned)
def session_quality_check(job, ctx):
    focus_group = FocusGroup.objects.filter(pk=job.params.get("focus_group_id"), owner=job.owner).first()
    if focus_group is None:
        session_check_abandoned(job)
        raise JobFailure("The session was deleted before it could be checked. Your credits were refunded.")
    evidence = session_evidence(focus_group=focus_group)
    personas = list(Persona.objects.filter(pk__in=job.params.get("persona_ids") or [], owner=job.owner))
    label = f"Focus group: {focus_group.title}"
    total = len(personas)
    ctx.progress(0, total, f"Judging {total} participant{'s' if total != 1 else ''}")

    def judge(persona: Persona) -> tuple[Persona, PersonaCheck | None, str]:
        try:
            check = judge_persona(
                persona=persona,
                evidence=evidence.get(persona.pk, []),
                user=job.owner,
                job=job,
                source_kind=CheckSource.SESSION,
                source_id=focus_group.pk,
                source_label=label,
            )
            return persona, check, ""
        except QuotaExceeded as exc:  # nothing saved: the budget is spent
            return persona, None, exc.message
        except Exception:
            logger.exception("Judging persona %s of focus group %s crashed", persona.pk, focus_group.pk)
            return persona, None, "Something went wrong judging this participant. It has been logged."
        finally:
            connection.close()  # each worker thread has its own connection

    parallel = max(1, min(total, settings.FOCUS_GROUP_PRIVATE_PARALLELISM))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"judge-{focus_group.pk}") as pool:
        outcomes = list(pool.map(judge, personas))
    scored = [check for _, check, _ in outcomes if check is not None and not check.failed]
    failed = [
        (persona.name, check.error if check is not None else error)
        for persona, check, error in outcomes
        if check is None or check.failed
    ]
    unit = int(job.params.get("unit_cost", 0))
    if unit and failed:
        # The unit of every participant without scores comes back; once (the ledger key).
        try:
            credits_refund_unused(
                spend_key=f"job:{job.pk}:spend",
                kept=unit * len(scored),
                idempotency_key=f"job:{job.pk}:refund",
                description=f"Refund: quality check of {len(failed)} participant{'s' if len(failed) != 1 else ''} "
                "failed",
            )
        except ApplicationError as exc:
            logger.warning("Quality check %s not refunded: %s", job.pk, exc.message)
    flagged = [check for check in scored if check.flagged]
    message = f"{len(scored)} of {total} judged" + (f", {len(failed)} failed" if failed else "")
    ctx.progress(total, total, message)
    if not scored and failed:
        raise JobFailure(f"The quality judge gave no usable scores ({failed[0][1]}). Your credits were refunded.")
    return {
        "focus_group_id": focus_group.pk,
        "judged": len(scored),
        "failed": [{"name": name, "error": error} for name, error in failed],
        "flagged": len(flagged),
    }


# --- reads ---------------------------------------------------------------------------------------


def session_checks(*, focus_group: FocusGroup) -> list[dict]:
    """Each participant's newest check from this session (scored or failed), in seating order; a participant
    not checked yet has ``check`` None."""
    participants = list(focus_group.participants.select_related("persona"))
    newest: dict[int, PersonaCheck] = {}
    for check in checks_for(
        personas=[p.persona_id for p in participants], source_kind=CheckSource.SESSION, source_id=focus_group.pk
    ):
        newest.setdefault(check.persona_id, check)
    return [{"persona": p.persona, "check": newest.get(p.persona_id)} for p in participants]
