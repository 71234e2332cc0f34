"""The quality check's job (``survey_quality``): the leading-question pass, the judge and the diversity, then,
once the retest run has ended too, test-retest κ and the check's end.

1. Leading twins: for each scale item, one call to the mini model (feature ``survey_leading_twin``, prompt
   surveys/prompts/leading_twin.md) writes the same question worded to lead toward the top of the scale; an
   item whose twin cannot be written is left out, with the reason.
2. The leading pass: each respondent who answered the run is asked the twins, and nothing else, in a fresh
   conversation with the run's own respondent prompt (feature ``survey_leading_answer``); the answers are
   rated exactly as the run rates (SSR against the item's anchors, plus the number asked directly). One
   respondent's call at a time per thread, *survey respondents at once* (App settings) threads.
3. The judge (``personas.quality.judge_persona``) reads each respondent's questions and answers in the run
   and scores in-character adherence and self-consistency, 0–9 each. A judge that gives no usable answer
   leaves a failed persona check with its reason: never a score.
4. Diversity: per scale item the variance and SD of the ratings (against a reference variance when the check
   was given one); per open item the mean pairwise cosine distance of the answers' embeddings (feature
   ``quality_diversity``).

Each respondent delivered (given the leading pass, scored by the judge) is counted under the check's row
lock, and only while the check's job runs and its credits are not settled, so a cancel never charges for
work that finishes after it. The job then hands off (``HANDED_OFF``): the end of the retest run
(``receivers.py``), or the reaper's look (``quality_watch``), finishes it (``quality_finalize``). A check where
every part failed ends failed, with each part's reason; its credits are refunded whatever happens.
"""

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from threading import Event

from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, QuotaExceeded
from cohorta.jobs.errors import JobCancelled, JobFailure
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import HANDED_OFF
from cohorta.jobs.services import job_finish
from llm.errors import LLMError
from llm.gateway import complete, embed
from llm.prompts import render_prompt
from personas.quality import judge_persona
from surveys.models import (
    SCALE_POINTS,
    Answer,
    AnswerStatus,
    LeadingAnswer,
    QualityCheck,
    QuestionKind,
    Respondent,
    RespondentState,
)
from surveys.quality import measures
from surveys.quality.services import quality_settle
from surveys.questionnaire import anchor_sets_for, scale_values
from surveys.runner import answer_status, respondent_prompt, respondent_schema
from surveys.ssr import expected_value, rate_answer_groups

logger = logging.getLogger(__name__)

TWIN_FEATURE = "survey_leading_twin"
LEADING_FEATURE = "survey_leading_answer"
DIVERSITY_FEATURE = "quality_diversity"
TWIN_MAX_CHARS = 1000
TWIN_SCHEMA = {
    "type": "object",
    "properties": {"leading": {"type": "string", "maxLength": TWIN_MAX_CHARS}},
    "required": ["leading"],
    "additionalProperties": False,
}
QUOTA_MESSAGE = "Your monthly AI budget ran out during the check: the rest was not done, and not charged."


def _fold(text: str) -> str:
    return " ".join(str(text or "").split()).casefold().strip(" ?.!")


# --- 1. the leading twins ----------------------------------------------------------------------------


def twin_prompt(run, question: dict) -> str:
    values = scale_values(question["kind"])
    labels = question.get("labels") or []
    bottom = f"{values[0]}" + (f" = {labels[0]}" if labels else "")
    top = f"{values[-1]}" + (f" = {labels[-1]}" if labels else "")
    return render_prompt(
        "surveys:leading_twin",
        {
            "title": run.title,
            "question": question["text"],
            "scale": f"{bottom} … {top}",
            "top": top,
            "bottom": bottom,
        },
    )


def twins_write(check: QualityCheck) -> dict[str, dict]:
    """{"<question id>": {"text": twin, "error": ""}} for every scale item, written once per item."""
    twins: dict[str, dict] = {}
    for question in check.run.questions:
        if question["kind"] not in SCALE_POINTS:
            continue
        try:
            result = complete(
                feature=TWIN_FEATURE,
                messages=[{"role": "user", "content": twin_prompt(check.run, question)}],
                schema=TWIN_SCHEMA,
                schema_name="leading_twin",
                user=check.owner,
                job=check.job_id,
            )
        except QuotaExceeded:
            raise
        except (LLMError, ApplicationError) as exc:
            twins[str(question["id"])] = {"text": "", "error": f"No leading version could be written: {exc.message}"}
            continue
        text = " ".join(str(result.data.get("leading") or "").split())
        if not text or _fold(text) == _fold(question["text"]):
            twins[str(question["id"])] = {
                "text": "",
                "error": "No leading version could be written: the model gave the question back unchanged.",
            }
        else:
            twins[str(question["id"])] = {"text": text, "error": ""}
    return twins


def leading_questions(check: QualityCheck) -> list[dict]:
    """The items with a twin, as the respondent prompt shows questions (the twin in place of the text)."""
    questions = []
    for question in check.run.questions:
        twin = (check.twins or {}).get(str(question["id"])) or {}
        if question["kind"] in SCALE_POINTS and twin.get("text"):
            questions.append(
                {**question, "text": twin["text"], "key": f"q{question['id']}", "shown_options": [], "options": []}
            )
    return questions


# --- delivering a unit ---------------------------------------------------------------------------------


def _deliver(check_id: int, counter: str, save: Callable[[], object] | None = None) -> bool:
    """Count one respondent's work as delivered (and save it) while the check runs and is not settled."""
    with transaction.atomic():
        locked = QualityCheck.objects.select_for_update().filter(pk=check_id).first()
        if locked is None or locked.settled or locked.job_id is None:
            return False
        if not Job.objects.filter(pk=locked.job_id, state=JobState.RUNNING, cancel_requested=False).exists():
            return False
        if save is not None:
            save()
        QualityCheck.objects.filter(pk=check_id).update(**{counter: F(counter) + 1})
    return True


# --- 2. the leading pass ---------------------------------------------------------------------------------


def leading_one(check: QualityCheck, respondent: Respondent, questions: list[dict]) -> str:
    """Ask one respondent the twins in a fresh conversation and save the rated answers. Returns "" when
    delivered, else why not."""
    result = complete(
        feature=LEADING_FEATURE,
        messages=[{"role": "user", "content": respondent_prompt(check.run, respondent, questions)}],
        schema=respondent_schema(questions),
        schema_name="survey_answers",
        user=check.owner,
        job=check.job_id,
        persona_id=respondent.persona_id,
    )
    answers: list[LeadingAnswer] = []
    rated: list[tuple[LeadingAnswer, dict]] = []
    for question in questions:
        item = result.data.get(question["key"]) or {}
        text = str(item.get("answer") or "").strip()
        answer = LeadingAnswer(
            quality_check_id=check.pk,
            respondent=respondent,
            question_id=question["id"],
            text=text,
            status=answer_status(text),
        )
        if answer.status == AnswerStatus.OK:
            if question.get("direct_elicitation") and isinstance(item.get("rating"), int):
                answer.direct = item["rating"]
            rated.append((answer, question))
        answers.append(answer)
    pmfs = rate_answer_groups(
        groups=[([a.text], anchor_sets_for(q)) for a, q in rated], user=check.owner, job=check.job_id
    )
    for (answer, question), pmf in zip(rated, pmfs, strict=True):
        answer.pmf = [float(p) for p in pmf[0]]
        answer.expected = float(expected_value(pmf[0], scale_values(question["kind"])))
    if not rated:
        return "Gave no usable answer to the leading questions (empty or refused)."
    delivered = _deliver(check.pk, "delivered_leading", lambda: LeadingAnswer.objects.bulk_create(answers))
    return "" if delivered else "Stopped before it was saved."


# --- 3. the judge ------------------------------------------------------------------------------------------


def judge_one(check: QualityCheck, respondent: Respondent, evidence: list[tuple[str, str]]) -> dict:
    run = check.run
    assert respondent.persona is not None  # judge_pass leaves out respondents whose persona was deleted
    persona_check = judge_persona(
        persona=respondent.persona,
        evidence=evidence,
        user=check.owner,
        job=check.job_id,
        source_kind="survey",
        source_id=run.pk,
        source_label=f"Survey: {run.title[:120]} (run of {run.created_at:%d %b %Y})",
    )
    row = {
        "respondent_id": respondent.pk,
        "persona_id": respondent.persona_id,
        "name": respondent.name,
        "check_id": persona_check.pk,
        "adherence": persona_check.adherence,
        "consistency": persona_check.consistency,
        "flagged": persona_check.flagged,
        "reasons": persona_check.flag_reasons,
        "error": persona_check.error,
    }
    if not persona_check.failed and not _deliver(check.pk, "delivered_judge"):
        row["error"] = "Stopped before it was counted."
    return row


def judge_evidence(run, respondent: Respondent) -> list[tuple[str, str]]:
    """The respondent's usable answers in the run, each with its question, in question order."""
    texts = {q["id"]: q["text"] for q in run.questions}
    numbers = {q["id"]: q.get("number", 0) for q in run.questions}
    answers = sorted(
        Answer.objects.filter(respondent=respondent, status=AnswerStatus.OK),
        key=lambda a: numbers.get(a.question_id, 0),
    )
    return [(texts.get(a.question_id, ""), a.text) for a in answers if a.text.strip()]


# --- running units in parallel -------------------------------------------------------------------------


class _Progress:
    def __init__(self, ctx, total: int) -> None:
        self.ctx, self.total, self.done = ctx, total, 0

    def step(self, message: str, count: int = 1) -> None:
        self.done += count
        self.ctx.progress(self.done, self.total, message)


def _parallel(items: list, work: Callable, *, progress: _Progress, label: str) -> tuple[list, str]:
    """Run ``work(item)`` over ``items`` on *survey respondents at once* threads; returns the results in order
    and why it stopped early ("" when it did not). A cancel stops new work; calls in flight finish and are not
    counted (``_deliver``); an exhausted AI budget stops the rest."""
    results: list = [None] * len(items)
    stop = Event()
    reason = ""

    def run(index: int):
        if stop.is_set():
            return None
        try:
            return work(items[index])
        finally:
            connection.close()  # each worker thread has its own connection

    parallel = max(1, min(len(items), get_app_settings().survey_parallelism))
    cancelled = False
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="survey-quality") as pool:
        pending = {pool.submit(run, index): index for index in range(len(items))}
        finished = 0
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    results[index] = future.result()
                except QuotaExceeded:
                    reason = QUOTA_MESSAGE
                    stop.set()
                except (LLMError, ApplicationError) as exc:
                    results[index] = exc
                except Exception as exc:  # one respondent's crash is that respondent's failure
                    logger.exception("Quality check unit crashed")
                    results[index] = exc
                finished += 1
            if done:
                try:
                    progress.step(f"{label}: {finished} of {len(items)} respondents", count=len(done))
                except JobCancelled:
                    cancelled = True
                    stop.set()
                    for future in pending:
                        future.cancel()
                    pending = {f: i for f, i in pending.items() if not f.cancelled()}
    if cancelled:
        raise JobCancelled("Cancelled")
    return results, reason


def _error_text(value) -> str:
    if isinstance(value, LLMError | ApplicationError):
        return value.message
    if isinstance(value, Exception):
        return "An unexpected error stopped it."
    return str(value or "")


def leading_pass(check: QualityCheck, progress: _Progress) -> dict:
    check.twins = twins_write(check)
    check.save(update_fields=["twins"])
    questions = leading_questions(check)
    respondents = list(Respondent.objects.filter(run=check.run, state=RespondentState.DONE).order_by("position"))
    twin_rows = [
        {"id": q["id"], "number": q.get("number"), "text": q["text"], **(check.twins or {}).get(str(q["id"]), {})}
        for q in check.run.questions
        if q["kind"] in SCALE_POINTS
    ]
    if not questions:
        progress.step("Leading questions: none could be written", count=len(respondents))
        first = next((row["error"] for row in twin_rows if row.get("error")), "")
        return {"twins": twin_rows, "items": [], "error": first or "No leading version could be written."}
    results, stopped = _parallel(
        respondents, lambda r: leading_one(check, r, questions), progress=progress, label="Leading questions"
    )
    failures = [
        {"respondent_id": r.pk, "name": r.name, "error": _error_text(value)}
        for r, value in zip(respondents, results, strict=True)
        if value != ""
    ]
    neutral = Answer.objects.filter(respondent__run=check.run, respondent__state=RespondentState.DONE)
    leading = LeadingAnswer.objects.filter(quality_check=check)
    asked = [q for q in check.run.questions if str(q["id"]) in {str(x["id"]) for x in questions}]
    items = measures.sycophancy_items(
        asked,
        [(a.respondent_id, a) for a in neutral],
        [(a.respondent_id, a) for a in leading],
        seed=check.run.seed,
    )
    answered = len(respondents) - len(failures)
    part: dict = {"twins": twin_rows, "items": items, "respondents": answered, "failures": failures}
    if stopped:
        part["stopped"] = stopped
    if not answered:
        part["error"] = (
            f"Nobody answered the leading questions: {failures[0]['error']}" if failures else "Nobody answered."
        )
    return part


def judge_pass(check: QualityCheck, progress: _Progress) -> dict:
    run = check.run
    respondents = list(
        Respondent.objects.filter(run=run, state=RespondentState.DONE).select_related("persona").order_by("position")
    )
    judged = [r for r in respondents if r.persona_id is not None]
    gone = len(respondents) - len(judged)
    if gone:
        progress.step("The judge: skipping personas since deleted", count=gone)
    results, stopped = _parallel(
        judged, lambda r: judge_one(check, r, judge_evidence(run, r)), progress=progress, label="The judge"
    )
    rows = []
    for respondent, value in zip(judged, results, strict=True):
        if isinstance(value, dict):
            rows.append(value)
        else:
            rows.append(
                {"respondent_id": respondent.pk, "persona_id": respondent.persona_id, "name": respondent.name,
                 "adherence": None, "consistency": None, "flagged": False, "reasons": [],
                 "error": _error_text(value) or "Not judged."}
            )  # fmt: skip
    scored = [row for row in rows if row["adherence"] is not None and row["consistency"] is not None]
    part: dict = {"bar": get_app_settings().quality_judge_bar, "respondents": rows, "scored": len(scored)}
    if gone:
        part["not_judged"] = f"{gone} respondent{'s' if gone != 1 else ''} not judged: their persona was deleted."
    if stopped:
        part["stopped"] = stopped
    if scored:
        part["mean_adherence"] = sum(row["adherence"] for row in scored) / len(scored)
        part["mean_consistency"] = sum(row["consistency"] for row in scored) / len(scored)
        part["flagged"] = sum(1 for row in scored if row["flagged"])
    else:
        failed = next((row["error"] for row in rows if row["error"]), "")
        part["error"] = failed or "Nobody could be judged."
    return part


def diversity_pass(check: QualityCheck, progress: _Progress) -> dict:
    run = check.run
    answers = list(Answer.objects.filter(respondent__run=run, respondent__state=RespondentState.DONE))
    scale = measures.diversity_scale_items(run.questions, answers, check.reference_variances or {})
    open_items = []
    for question in run.questions:
        if question["kind"] != QuestionKind.OPEN:
            continue
        texts = [
            a.text.strip()
            for a in answers
            if a.question_id == question["id"] and a.status == AnswerStatus.OK and a.text.strip()
        ]
        entry: dict = {
            "id": question["id"],
            "number": question.get("number"),
            "text": question["text"],
            "n": len(texts),
        }
        if len(texts) < 2:
            entry["distance"] = None
            entry["reading_text"] = "Too few answers to compare (at least 2 are needed)."
        else:
            try:
                vectors = embed(feature=DIVERSITY_FEATURE, texts=texts, user=check.owner, job=check.job_id)
            except QuotaExceeded:
                raise
            except (LLMError, ApplicationError) as exc:
                entry["distance"] = None
                entry["error"] = f"The answers could not be embedded: {exc.message}"
                entry["reading_text"] = entry["error"]
            else:
                entry["distance"] = measures.mean_pairwise_cosine_distance(vectors)
                entry["reading_text"] = measures.distance_text(entry["distance"], len(texts))
        open_items.append(entry)
    progress.step("Diversity measured")
    return {"scale": scale, "open": open_items}


# --- the job ----------------------------------------------------------------------------------------------


def _save_results(check_id: int, **parts) -> None:
    with transaction.atomic():
        locked = QualityCheck.objects.select_for_update().get(pk=check_id)
        locked.results = {**(locked.results or {}), **parts}
        locked.save(update_fields=["results"])


def quality_execute(job, ctx):
    """The check's own parts, then the hand-off to the retest's end."""
    check = QualityCheck.objects.select_related("run", "owner").get(pk=job.params["check_id"])
    progress = _Progress(ctx, job.progress_total or 1)
    try:
        if "leading" in check.parts:
            _save_results(check.pk, leading=leading_pass(check, progress))
        if "judge" in check.parts:
            _save_results(check.pk, judge=judge_pass(check, progress))
        _save_results(check.pk, diversity=diversity_pass(check, progress))
    except QuotaExceeded:
        quality_settle(check)
        raise JobFailure(QUOTA_MESSAGE) from None
    except JobCancelled:
        quality_settle(check)
        raise
    except Exception:
        quality_settle(check)  # a crash settles too: nothing reserved is kept for work not done
        raise
    _save_results(check.pk, own_done=True)
    ctx.progress(progress.total, progress.total, "Waiting for the retest run to finish")
    quality_finalize(check.pk)
    return HANDED_OFF


def _retest_part(check: QualityCheck) -> dict:
    retest = check.retest_run
    assert retest is not None  # quality_finalize asks only when there is one
    first = Answer.objects.filter(respondent__run=check.run, respondent__state=RespondentState.DONE).select_related(
        "respondent"
    )
    second = Answer.objects.filter(respondent__run=retest, respondent__state=RespondentState.DONE).select_related(
        "respondent"
    )
    items = measures.retest_items(
        check.run.questions,
        [(a.respondent.position, a) for a in first],
        [(a.respondent.position, a) for a in second],
    )
    answered = Respondent.objects.filter(run=retest, state=RespondentState.DONE).count()
    part = {
        "run_id": retest.pk,
        "url": reverse("surveys:run", args=[retest.pk]),
        "respondents": answered,
        "asked": Respondent.objects.filter(run=retest).count(),
        "items": items,
        **measures.retest_summary(items),
    }
    if not answered:
        part["error"] = "Nobody answered the retest run, so there is no κ. See why on the retest's page."
    return part


def _outcome(check: QualityCheck) -> tuple[str, str]:
    """DONE, or FAILED with every part's reason when none gave a result."""
    results = check.results or {}
    worked, reasons = [], []
    for part in ("retest", "leading", "judge"):
        if part not in check.parts:
            continue
        entry = results.get(part) or {}
        if entry.get("error"):
            reasons.append(entry["error"])
        else:
            worked.append(part)
    if reasons and not worked:
        return JobState.FAILED, " ".join(reasons)[:900] + " Its credits were refunded."
    return JobState.DONE, ""


def quality_finalize(check_id: int) -> bool:
    """Finish the check once its own parts are done and its retest has ended: κ, credits, the job. Safe to call
    from both ends at once (one wins under the row lock). Returns whether it finished the check now."""
    with transaction.atomic():
        check = (
            QualityCheck.objects.select_for_update(of=("self",)).select_related("run", "retest_run").get(pk=check_id)
        )
        job = Job.objects.filter(pk=check.job_id).first() if check.job_id is not None else None
        results = dict(check.results or {})
        if job is None or job.state != JobState.RUNNING or results.get("finished_at") or not results.get("own_done"):
            return False
        retest = check.retest_run
        if (
            retest is not None
            and retest.job_id is not None
            and Job.objects.filter(
                pk=retest.job_id, state__in=(JobState.PENDING, JobState.QUEUED, JobState.RUNNING)
            ).exists()
        ):
            return False
        if "retest" in check.parts:
            results["retest"] = (
                _retest_part(check)
                if retest is not None
                else {"error": "The retest run was deleted before it finished.", "items": []}
            )
        results["finished_at"] = timezone.now().isoformat()
        check.results = results
        check.save(update_fields=["results"])
    refunded = quality_settle(check)
    state, error = _outcome(check)
    summary = {"check_id": check.pk, "run_id": check.run_id, "refunded": refunded}
    job_finish(
        job=job,
        state=state,
        result=summary,
        error=error,
        progress_done=job.progress_total,
        progress_message="Done" if state == JobState.DONE else "Failed",
    )
    return True


def quality_on_retest_ended(*, job_id) -> None:
    check = QualityCheck.objects.filter(retest_run__job_id=job_id).first()
    if check is not None:
        quality_finalize(check.pk)


def quality_abandoned(job) -> None:
    """Cancelled, or its worker died: stop the retest and refund what was not delivered."""
    check = QualityCheck.objects.filter(pk=job.params.get("check_id")).first()
    if check is not None:
        quality_settle(check)


def quality_watch(job) -> bool:
    """The reaper's look at a check gone quiet. While its own parts run, the handler beats for it; after the
    hand-off it waits on the retest, whose own watch keeps it moving: finish it when the retest has ended."""
    check = QualityCheck.objects.filter(pk=job.params.get("check_id")).first()
    if check is None:
        return False
    if not (check.results or {}).get("own_done"):
        return False  # the handler stopped beating: its worker died
    quality_finalize(check.pk)
    return True
