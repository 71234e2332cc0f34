"""Running a survey on a panel: one Job for the run, one short task per respondent, nobody waiting.

The run's job (``survey_run``, surveys/jobs.py) hands out the first respondents and returns at once,
leaving the job running (``HANDED_OFF``): no worker thread waits for a run, so runs can never hold every
thread while their respondents wait for one. Each respondent task (surveys/tasks.py) claims its
respondent with a conditional UPDATE, asks the persona every question in one structured call, rates
scale answers by semantic similarity (surveys/ssr.py) and saves everything in one transaction, again
conditionally: an answer that arrives after the run was cancelled or abandoned is discarded, never
half-saved. As it ends, the task moves the run on (``run_advance``): it hands out the next respondent
(at most *survey respondents at once*, App settings, in flight), reports progress with one conditional
UPDATE, and the last one to finish finishes the job. While it answers, a task beats for its respondent;
the reaper (``run_watch``) fails a respondent whose worker stopped beating and moves the run on.

Credits: the run reserved ``unit_cost`` per respondent. A respondent that fails is refunded at once
(ledger key ``survey-run:<run>:refund:<respondent>``); whatever is neither delivered nor refunded when
the run ends — cancelled, crashed, or its worker died (the reaper calls ``run_settle``) — is refunded
in one go (``…:refund:rest``). Both are idempotent.

A run that finishes with open answers starts the job that finds their themes (``services.themes_on_run_end``).
"""

import logging
import random
import re
from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.utils import timezone

from billing.models import CreditTransaction
from billing.services import credits_refund, credits_refund_unused
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, QuotaExceeded
from cohorta.jobs.beat import SideBeat
from cohorta.jobs.fanout import Fanout, eta_text
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import HANDED_OFF
from cohorta.jobs.services import job_finish, job_progress_report
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import render_prompt
from llm.replay import llm_run, note
from surveys.models import (
    SCALE_POINTS,
    Answer,
    AnswerStatus,
    QuestionKind,
    Respondent,
    RespondentState,
    Run,
)
from surveys.questionnaire import anchor_sets_for, scale_values
from surveys.scopes import run_scope
from surveys.services import themes_on_run_end
from surveys.ssr import ANCHOR_SETS_VERSION, expected_value, rate_answer_groups

logger = logging.getLogger(__name__)

# Sends one respondent to a worker (surveys.tasks.dispatch_respondent); passed in, since the tasks
# module calls this one.
Dispatch = Callable[[int], None]
RESPONDENTS = Fanout(
    item_model=Respondent,
    parent_model=Run,
    parent_field="run",
    parallelism=lambda: get_app_settings().survey_parallelism,
)
MAX_ANSWER_WORDS = 80
QUOTA_MESSAGE = "Not asked: your monthly AI budget ran out during the run. Your credits for it were refunded."
_REFUSAL = re.compile(
    r"\b(as an ai|language model|i can(?:no|')t (?:answer|respond|help)|i (?:won't|will not) answer|"
    r"(?:i'd|i would) rather not (?:say|answer)|prefer not to (?:say|answer)|decline to answer|no comment)\b",
    re.I,
)


# --- the questionnaire as one respondent sees it -----------------------------------------------------


def respondent_rng(run: Run, respondent: Respondent) -> random.Random:
    # By position, not row id: an exact replay (a new run with the same seed) shows each respondent the same
    # order, so it sends the same request.
    return random.Random(f"{run.seed}:{respondent.position}")


def shown_questions(run: Run, respondent: Respondent) -> list[dict]:
    """The run's questions in the order this respondent sees them, options shuffled where asked.
    Seeded by the run and the respondent, so the recorded order can be reproduced."""
    rng = respondent_rng(run, respondent)
    questions = [dict(q) for q in run.questions]
    if run.randomize_questions:
        rng.shuffle(questions)
    for question in questions:
        options = list(question.get("options") or [])
        if question.get("randomize_options"):
            rng.shuffle(options)
        question["shown_options"] = options
        question["key"] = f"q{question['id']}"
    return questions


def _scale_text(question: dict) -> str:
    kind = question["kind"]
    labels = question.get("labels") or []
    values = scale_values(kind)
    if len(labels) == len(values):
        return ", ".join(f"{value} = {label}" for value, label in zip(values, labels, strict=True))
    if len(labels) == 2:
        return f"{values[0]} = {labels[0]} … {values[-1]} = {labels[1]}"
    return f"{values[0]} to {values[-1]}"


def respondent_prompt(run: Run, respondent: Respondent, questions: list[dict]) -> str:
    shown = [
        {
            "key": q["key"],
            "kind_label": QuestionKind(q["kind"]).label,
            "text": q["text"],
            "scale": _scale_text(q) if q["kind"] in SCALE_POINTS else "",
            "options": q["shown_options"],
        }
        for q in questions
    ]
    return render_prompt(
        "surveys:respondent",
        {"persona": respondent.profile, "title": run.title, "intro": run.intro, "questions": shown},
    )


def respondent_schema(questions: list[dict]) -> dict:
    """One object per question, keyed ``q<id>`` in the order shown: the free-text answer, plus the
    number (direct elicitation) or the option(s) picked, constrained to what the question allows."""
    properties = {}
    for q in questions:
        fields: dict = {
            "answer": {"type": "string", "description": f"In your own words, at most {MAX_ANSWER_WORDS} words."}
        }
        if q["kind"] in SCALE_POINTS and q.get("direct_elicitation"):
            fields["rating"] = {"type": "integer", "enum": scale_values(q["kind"])}
        elif q["kind"] == QuestionKind.SINGLE:
            fields["choice"] = {"type": "string", "enum": q["shown_options"]}
        elif q["kind"] == QuestionKind.MULTIPLE:
            fields["choices"] = {"type": "array", "items": {"type": "string", "enum": q["shown_options"]}}
        properties[q["key"]] = {
            "type": "object",
            "properties": fields,
            "required": list(fields),
            "additionalProperties": False,
        }
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def answer_status(text: str) -> str:
    if not (text or "").strip(" .…-\n\t"):
        return AnswerStatus.EMPTY
    if _REFUSAL.search(text):
        return AnswerStatus.REFUSED
    return AnswerStatus.OK


# --- credits -----------------------------------------------------------------------------------------


def _refund_respondent(run: Run, respondent: Respondent) -> None:
    reserve = CreditTransaction.objects.filter(idempotency_key=f"survey-run:{run.pk}:reserve").first()
    if reserve is None or not run.unit_cost:
        return
    credits_refund(
        spend=reserve,
        amount=run.unit_cost,
        idempotency_key=f"survey-run:{run.pk}:refund:{respondent.pk}",
        description=f"Refund: {respondent.name} did not answer",
    )


def run_settle(run: Run) -> int:
    """Close every respondent still open (its late answer will be discarded) and refund what was
    reserved and neither delivered nor refunded yet. Idempotent; returns the credits refunded now."""
    RESPONDENTS.close_open(run, "Not asked: the run stopped.")
    delivered = Respondent.objects.filter(run=run, state=RespondentState.DONE).count()
    return credits_refund_unused(
        spend_key=f"survey-run:{run.pk}:reserve",
        kept=delivered * run.unit_cost,
        idempotency_key=f"survey-run:{run.pk}:refund:rest",
        description="Refund: survey respondents not asked",
    )


# --- one respondent ----------------------------------------------------------------------------------


def _fail(run: Run, respondent: Respondent, reason: str, *, from_states=(RespondentState.RUNNING,)) -> bool:
    return RESPONDENTS.fail(
        respondent.pk, reason, from_states=from_states, on_fail=partial(_refund_respondent, run, respondent)
    )


def _job_running(run: Run) -> bool:
    if run.job_id is None:
        return False
    return Job.objects.filter(pk=run.job_id, state=JobState.RUNNING, cancel_requested=False).exists()


def _respondent_beat(respondent_id: int, job_id) -> SideBeat:
    """Beats for a respondent (and its run's job) while its worker waits on the provider, so the reaper takes
    only a dead worker's respondent for lost, not a slow one."""

    def beat() -> None:
        now = timezone.now()
        Respondent.objects.filter(pk=respondent_id, state=RespondentState.RUNNING).update(heartbeat_at=now)
        Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=now)

    return SideBeat(beat, name=f"respondent-beat-{respondent_id}")


def respondent_answer(*, respondent_id: int, dispatch: Dispatch) -> str:
    """Ask one persona the whole questionnaire, then move the run on. Safe to call twice: only one claim
    wins."""
    now = timezone.now()
    claimed = Respondent.objects.filter(pk=respondent_id, state=RespondentState.QUEUED).update(
        state=RespondentState.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return "not-claimed"
    respondent = Respondent.objects.select_related("run", "run__owner").get(pk=respondent_id)
    run = respondent.run
    try:
        with _respondent_beat(respondent.pk, run.job_id), llm_run(run_scope(run)):
            return _answer(run, respondent)
    finally:
        run_advance(run, dispatch=dispatch)


def _answer(run: Run, respondent: Respondent) -> str:
    if run.stop_reason == "quota":
        _fail(run, respondent, QUOTA_MESSAGE)
        return "failed"
    if not _job_running(run):
        return "stopped"  # the run's settlement closes and refunds it
    questions = shown_questions(run, respondent)
    note(run_scope(run), "seeds", "question order", run.seed)
    try:
        result = complete(
            feature="survey_answer",
            messages=[{"role": "user", "content": respondent_prompt(run, respondent, questions)}],
            schema=respondent_schema(questions),
            schema_name="survey_answers",
            user=run.owner,
            job=run.job_id,
            persona_id=respondent.persona_id,
        )
        answers = _answers(run, respondent, questions, result.data)
    except QuotaExceeded:
        Run.objects.filter(pk=run.pk).update(stop_reason="quota")
        _fail(run, respondent, QUOTA_MESSAGE)
        return "failed"
    except (LLMError, ApplicationError) as exc:
        _fail(run, respondent, f"{exc.message} Your credits for this respondent were refunded.")
        return "failed"
    except Exception:
        logger.exception("Survey respondent %s crashed", respondent.pk)
        _fail(run, respondent, "An unexpected error stopped this respondent. Your credits for it were refunded.")
        return "failed"
    if not any(answer.status == AnswerStatus.OK for answer in answers):
        _fail(run, respondent, "Gave no usable answer (empty or refused). Your credits for it were refunded.")
        return "failed"
    with transaction.atomic():
        moved = Respondent.objects.filter(pk=respondent.pk, state=RespondentState.RUNNING).update(
            state=RespondentState.DONE,
            finished_at=timezone.now(),
            question_order=[q["id"] for q in questions],
            simulated=result.simulated,
        )
        if not moved:
            return "discarded"  # cancelled or abandoned meanwhile: already refunded, nothing saved
        Answer.objects.bulk_create(answers)
    return "done"


def _answers(run: Run, respondent: Respondent, questions: list[dict], data: dict) -> list[Answer]:
    answers = []
    scale: list[tuple[Answer, dict]] = []
    for position, q in enumerate(questions, start=1):
        item = data.get(q["key"]) or {}
        text = str(item.get("answer") or "").strip()
        answer = Answer(
            respondent=respondent,
            question_id=q["id"],
            shown_position=position,
            option_order=q["shown_options"],
            text=text,
            status=answer_status(text),
        )
        if answer.status == AnswerStatus.OK:
            if q["kind"] in SCALE_POINTS:
                if q.get("direct_elicitation") and isinstance(item.get("rating"), int):
                    answer.direct = item["rating"]
                scale.append((answer, q))
            elif q["kind"] == QuestionKind.SINGLE and item.get("choice") in q["shown_options"]:
                answer.choices = [item["choice"]]
            elif q["kind"] == QuestionKind.MULTIPLE:
                picked = [c for c in item.get("choices") or [] if c in q["shown_options"]]
                answer.choices = list(dict.fromkeys(picked))
        answers.append(answer)
    # Every scale answer of the respondent in one embedding request, not one per question.
    if scale:
        note(run_scope(run), "anchor_set", "", ANCHOR_SETS_VERSION)
    pmfs = rate_answer_groups(
        groups=[([answer.text], anchor_sets_for(q)) for answer, q in scale], user=run.owner, job=run.job_id
    )
    for (answer, q), pmf in zip(scale, pmfs, strict=True):
        answer.pmf = [float(p) for p in pmf[0]]
        answer.expected = float(expected_value(pmf[0], scale_values(q["kind"])))
    return answers


# --- the run ------------------------------------------------------------------------------------------


def run_counts(run: Run) -> dict[str, int]:
    return RESPONDENTS.counts(run)


def progress_message(counts: dict[str, int], elapsed: float | None = None) -> str:
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    message = f"{finished} of {counts['total']} respondents answered"
    if counts["failed"]:
        message += f", {counts['failed']} failed"
    remaining = counts["total"] - finished
    if elapsed is not None and finished and remaining:
        message += f" · {eta_text(elapsed / finished * remaining)}"
    return message


def _fail_unasked(run: Run) -> None:
    for respondent in Respondent.objects.filter(run=run, state__in=(RespondentState.PENDING, RespondentState.QUEUED)):
        _fail(run, respondent, QUOTA_MESSAGE, from_states=(RespondentState.PENDING, RespondentState.QUEUED))


def run_advance(run: Run, *, dispatch: Dispatch) -> bool:
    """Move a run on: hand out respondents while there is room, report progress, and finish the run's
    job when nobody is left to answer. Called by the run's job to start, then by each respondent's task
    as it ends (so no worker thread waits for a run) and by the reaper. The job's transition to done is
    one conditional UPDATE, so of two last respondents finishing together only one finishes the run.
    Returns whether the run is still going."""
    job = Job.objects.filter(pk=run.job_id).first() if run.job_id is not None else None
    if job is None or job.state != JobState.RUNNING:
        return False  # cancelled or interrupted: its settlement closed the respondents
    if Run.objects.filter(pk=run.pk, stop_reason="quota").exists():
        _fail_unasked(run)
    else:
        RESPONDENTS.hand_out(run, dispatch)
    counts = run_counts(run)
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    if counts["pending"] + counts["queued"] + counts["running"]:
        elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else None
        job_progress_report(
            job_id=job.pk, done=finished, total=counts["total"], message=progress_message(counts, elapsed)
        )
        return True
    refunded = run_settle(run)
    if refunded:
        logger.warning("Survey run %s: refunded %s credits left over at the end", run.pk, refunded)
    job = job_finish(
        job=job,
        state=JobState.DONE,
        result=_summary(run, counts),
        progress_done=finished,
        progress_total=counts["total"],
        progress_message=progress_message(counts),
    )
    if job.state == JobState.DONE:
        themes_on_run_end(run)
    return False


def run_execute(job, ctx, *, dispatch: Dispatch):
    """The run's job: hand out the first respondents and return; their tasks carry the run on."""
    run = Run.objects.get(pk=job.params["run_id"])
    ctx.check_cancelled()
    run_advance(run, dispatch=dispatch)
    return HANDED_OFF


def run_watch(run: Run, *, dispatch: Dispatch) -> bool:
    """The reaper's look at a run that has gone quiet (nobody reported progress for a while): a respondent
    whose worker stopped beating is failed and refunded, one whose task the broker lost (still queued
    after the broker would have handed it back) too, then the run is moved on, which finishes it when
    nobody is left. Returns True: the run goes on, or has just been finished."""
    for respondent in RESPONDENTS.dead(run):
        _fail(run, respondent, "The worker answering stopped responding. Your credits for it were refunded.")
    for respondent in RESPONDENTS.lost(run):
        _fail(
            run,
            respondent,
            "Not asked: its task was lost on the way to a worker. Your credits for it were refunded.",
            from_states=(RespondentState.QUEUED,),
        )
    run_advance(run, dispatch=dispatch)
    return True


def _summary(run: Run, counts: dict[str, int]) -> dict:
    return {
        "run_id": run.pk,
        "total": counts["total"],
        "done": counts["done"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "stop_reason": Run.objects.filter(pk=run.pk).values_list("stop_reason", flat=True).first() or "",
    }
