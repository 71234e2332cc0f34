"""Starting, pricing and settling the quality check of a survey run (the work is in ``runner.py``).

A check is asked for with the run (``run_start_with_check``: the run's page form and the API's
``check_quality``), when it waits, without a job, for the run to end (``receivers.py`` hears the run's job end
and calls ``quality_on_run_ended``), or on a finished run (``quality_start``), when it begins at once.

Beginning (``quality_begin``) creates, in one transaction, the retest — a new, ordinary run of the same frozen
questions on the run's respondents who answered (their profiles as they were), with a new seed, answered
afresh by the model like any run — and then the check's own job (``survey_quality``), which does the
leading-question pass, the judge and the diversity, and finishes once the retest has ended too.

Credits: reserved up front, once, under ``survey-quality:<id>:reserve``: per respondent, the retest at the
price of another run of the survey (``run_unit_cost``, blocks of questions) plus, for each of the leading pass
and the judge, the App settings' *quality check credits per persona*. The retest run reserves nothing of its
own. When the check ends, however it ends, ``quality_settle`` keeps what was delivered (retest respondents who
answered, respondents given the leading pass, respondents the judge scored) and refunds the rest
(``…:refund:rest``). 402 before anything starts when the credits are short.
"""

import contextlib
import logging
import random

from django.db import transaction

from billing.selectors import credits_balance
from billing.services import credits_refund_unused, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import ACTIVE_STATES, Job, JobState
from cohorta.jobs.services import job_cancel, job_create
from surveys.models import SCALE_POINTS, QualityCheck, Respondent, RespondentState, Run, Survey
from surveys.quality.measures import MIN_KAPPA_RESPONDENTS
from surveys.services import run_start, run_unit_cost

logger = logging.getLogger(__name__)

JOB_KIND = "survey_quality"
PARTS = ("retest", "leading", "judge", "diversity")
PART_LABELS = {
    "retest": "Test-retest",
    "leading": "Leading questions",
    "judge": "The judge",
    "diversity": "Diversity",
}


def reserve_key(check: QualityCheck) -> str:
    return f"survey-quality:{check.pk}:reserve"


def planned_parts(questions: list[dict]) -> tuple[list[str], dict[str, str]]:
    """The parts a check of these questions does, and why any other is left out."""
    parts, skipped = ["retest", "judge", "diversity"], {}
    if any(q["kind"] in SCALE_POINTS for q in questions):
        parts.insert(1, "leading")
    else:
        skipped["leading"] = "No scale question: a leading twin is written for scale questions only."
    return parts, skipped


def unit_costs(*, questions: list[dict], parts: list[str]) -> tuple[int, int]:
    """(retest credits per respondent, credits per respondent for each of the leading pass and the judge)."""
    retest = run_unit_cost(question_count=len(questions)) if "retest" in parts else 0
    return retest, get_app_settings().quality_credits_per_persona


def check_cost(*, questions: list[dict], respondents: int) -> dict:
    """What a check of ``respondents`` costs, and how it splits (for the forms' estimate and the 402)."""
    parts, _ = planned_parts(questions)
    retest, per_pass = unit_costs(questions=questions, parts=parts)
    passes = sum(part in parts for part in ("leading", "judge"))
    per_respondent = retest + per_pass * passes
    return {
        "per_respondent": per_respondent,
        "retest": retest,
        "per_pass": per_pass,
        "passes": passes,
        "total": per_respondent * respondents,
    }


def _reference_variances(value) -> dict:
    """{"<question id>": variance > 0} from what a caller passed; anything else is left out."""
    clean = {}
    for key, variance in (value or {}).items():
        try:
            number = float(variance)
        except (TypeError, ValueError):
            continue
        if str(key).isdigit() and number > 0:
            clean[str(key)] = number
    return clean


def _create(*, run: Run, respondents: int, reference_variances=None, description: str) -> QualityCheck:
    """The check's row and its reservation (InsufficientCredits: nothing is created). Inside a transaction."""
    parts, skipped = planned_parts(run.questions)
    retest, per_pass = unit_costs(questions=run.questions, parts=parts)
    cost = check_cost(questions=run.questions, respondents=respondents)
    balance = credits_balance(user=run.owner)
    if cost["total"] > balance:
        raise InsufficientCredits(
            f"Checking quality needs {cost['total']} credits ({respondents} respondents × {cost['per_respondent']}: "
            f"the retest {cost['retest']}, and {cost['per_pass']} each for the leading questions and the judge); "
            f"you have {balance}{' after the run' if description == 'with the run' else ''}. "
            "Buy credits on the Billing page, or leave the quality check out.",
            extra={"required": cost["total"], "balance": balance},
        )
    check = QualityCheck.objects.create(
        run=run,
        owner=run.owner,
        parts=parts,
        respondents=respondents,
        retest_unit_cost=retest,
        pass_unit_cost=per_pass,
        reserved=cost["total"],
        reference_variances=_reference_variances(reference_variances),
        results={"skipped": skipped},
    )
    if cost["total"]:
        credits_spend(
            user=run.owner,
            amount=cost["total"],
            idempotency_key=reserve_key(check),
            reference=f"survey-quality:{check.pk}",
            description=f"Quality check of “{run.title[:60]}” ({description}): {respondents} respondents",
        )
    return check


def run_start_with_check(*, survey: Survey, reference_variances=None, **panel) -> Run:
    """Start a run (``surveys.services.run_start``) and ask for its quality check, both or neither: a 402 for
    either leaves nothing started and nothing charged. The check begins when the run ends."""
    with transaction.atomic():
        run = run_start(survey=survey, **panel)
        respondents = run.panel_size or Respondent.objects.filter(run=run).count()
        _create(run=run, respondents=respondents, reference_variances=reference_variances, description="with the run")
    return run


def _active_check(run: Run) -> QualityCheck | None:
    for check in QualityCheck.objects.filter(run=run).select_related("job")[:5]:
        if check.waiting or (check.job is not None and check.job.state in ACTIVE_STATES):
            return check
    return None


def quality_start(*, run: Run, reference_variances=None) -> QualityCheck:
    """Check a finished run now: 409 while the run (or another check of it) goes on, or when nobody answered;
    402 when the credits are short. Answers at once with the check (its job runs in a worker)."""
    if QualityCheck.objects.filter(retest_run=run).exists():
        raise ApplicationError(
            "This run is the retest of a quality check: check the original run instead.",
            code="is_retest",
            status_code=409,
        )
    if run.job_id is None or Job.objects.filter(pk=run.job_id, state__in=ACTIVE_STATES).exists():
        raise ApplicationError(
            "The run is still going: its quality can be checked once everyone has answered.",
            code="run_active",
            status_code=409,
        )
    answered = Respondent.objects.filter(run=run, state=RespondentState.DONE).count()
    if not answered:
        raise ApplicationError(
            "Nobody answered in this run, so there is nothing to check. Run the survey again first.",
            code="nobody_answered",
            status_code=409,
        )
    with transaction.atomic():
        # Locked, so two clicks start one check.
        Run.objects.select_for_update().filter(pk=run.pk).first()
        if _active_check(run) is not None:
            raise ApplicationError(
                "A quality check of this run is already under way.", code="check_active", status_code=409
            )
        check = _create(
            run=run, respondents=answered, reference_variances=reference_variances, description="of a finished run"
        )
        quality_begin(check)
    return check


def _retest_create(check: QualityCheck, respondents: list[Respondent]) -> Run:
    original = check.run
    retest = Run.objects.create(
        survey_id=original.survey_id,
        owner=original.owner,
        panel_label=f"Retest of the run of {original.created_at:%d %b %Y, %H:%M}",
        questions=original.questions,
        title=original.title,
        intro=original.intro,
        randomize_questions=original.randomize_questions,
        # A new seed: a fresh run, as a second wave of the same survey would be.
        seed=random.SystemRandom().randrange(1, 2**31),
        unit_cost=check.retest_unit_cost,
    )
    # The same respondents as they answered the first time (position pairs them across the two runs).
    Respondent.objects.bulk_create(
        Respondent(run=retest, persona_id=r.persona_id, position=r.position, profile=r.profile) for r in respondents
    )
    retest.job = job_create(
        owner=retest.owner,
        kind="survey_run",
        target=retest,
        total=len(respondents),
        params={"run_id": retest.pk},
        message="Waiting to start",
    )
    retest.save(update_fields=["job"])
    return retest


@transaction.atomic
def quality_begin(check: QualityCheck) -> QualityCheck:
    """Start a check whose run has ended: the retest run first (so a user with one job slot gets the retest
    before the check waits on it), then the check's job. With nobody to check it ends here, refunded."""
    answered = list(Respondent.objects.filter(run=check.run, state=RespondentState.DONE).order_by("position", "id"))
    if not answered:
        return quality_not_started(check, "Nobody answered in the run, so there was nothing to check.")
    results = dict(check.results or {})
    skipped = dict(results.get("skipped") or {})
    parts = list(check.parts)
    if "retest" in parts and len(answered) < MIN_KAPPA_RESPONDENTS:
        parts.remove("retest")
        skipped["retest"] = (
            f"Too few respondents for κ: {len(answered)} answered, and test-retest needs at least "
            f"{MIN_KAPPA_RESPONDENTS}. No retest was run (and none charged). Check a run on a larger panel."
        )
    results["skipped"] = skipped
    check.parts = parts
    check.results = results
    if "retest" in parts:
        check.retest_run = _retest_create(check, answered)
    units = len(answered) * sum(part in parts for part in ("leading", "judge")) + 1
    check.job = job_create(
        owner=check.owner,
        kind=JOB_KIND,
        target=check,
        total=units,
        params={"check_id": check.pk},
        message="Waiting to start",
    )
    check.save(update_fields=["parts", "results", "retest_run", "job"])
    return check


def quality_not_started(check: QualityCheck, reason: str) -> QualityCheck:
    QualityCheck.objects.filter(pk=check.pk, job__isnull=True, not_started="").update(not_started=reason[:500])
    check.refresh_from_db()
    quality_settle(check)
    return check


def quality_on_run_ended(*, job_id, state: str) -> None:
    """A survey run's job ended: begin the check that waited for it (the end of a retest is ``runner``'s)."""
    waiting = QualityCheck.objects.filter(run__job_id=job_id, job__isnull=True, not_started="").first()
    if waiting is not None:
        if state == JobState.DONE:
            quality_begin(waiting)
        else:
            quality_not_started(
                waiting,
                "The run stopped before it finished, so its quality was not checked. Its credits were refunded; "
                "check the run from its page if enough respondents answered.",
            )


def quality_on_panel_ended(*, job_id) -> None:
    """A generated panel's job ended: if its run will never start, the check that waited for it is refunded."""
    run = Run.objects.filter(panel_job_id=job_id).first()
    if run is None:
        return
    run.refresh_from_db()
    if run.not_started:
        for check in QualityCheck.objects.filter(run=run, job__isnull=True, not_started=""):
            quality_not_started(
                check, "The survey did not run (its panel was not generated), so neither did the check."
            )


def retest_stop(check: QualityCheck) -> None:
    """Stop the check's retest run if it still goes (its own settlement closes its respondents)."""
    retest = Run.objects.filter(pk=check.retest_run_id).select_related("job").first() if check.retest_run_id else None
    if retest is None or retest.job is None or not retest.job.is_active:
        return
    with contextlib.suppress(IllegalJobTransition):  # it ended meanwhile
        job_cancel(job=retest.job, reason="Stopped with its quality check.")


def delivered_credits(check: QualityCheck) -> int:
    retest_done = (
        Respondent.objects.filter(run_id=check.retest_run_id, state=RespondentState.DONE).count()
        if check.retest_run_id
        else 0
    )
    return retest_done * check.retest_unit_cost + (check.delivered_leading + check.delivered_judge) * (
        check.pass_unit_cost
    )


def quality_settle(check: QualityCheck) -> int:
    """Refund what was reserved and not delivered, once; nothing is delivered after this. Returns the credits
    refunded now."""
    retest_stop(check)
    with transaction.atomic():
        locked = QualityCheck.objects.select_for_update().get(pk=check.pk)
        if locked.settled:
            return 0
        locked.settled = True
        locked.save(update_fields=["settled"])
        kept = delivered_credits(locked)
    refunded = credits_refund_unused(
        spend_key=reserve_key(locked),
        kept=kept,
        idempotency_key=f"survey-quality:{locked.pk}:refund:rest",
        description="Refund: quality check work not delivered",
    )
    check.settled = True
    return refunded
