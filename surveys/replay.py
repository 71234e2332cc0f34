"""Exact replay of a finished survey run: the same frozen questionnaire, seed and respondents (as they were
then), every answer and embedding taken from the response cache, so the distributions and statistics come
out the same without a request to the AI provider (llm.replay). Free when the cache holds everything; a
replay allowed to ask for what the cache lost is charged like a run."""

from django.db import transaction

from cohorta.errors import ApplicationError
from cohorta.jobs.models import JobState
from llm.models import ReplayMode, RunRecord
from llm.replay import ReplayPlan, replay_plan, replay_prepare, replay_refusal
from surveys.models import Respondent, RespondentState, Run
from surveys.scopes import run_scope
from surveys.services import run_begin


def replay_check(run: Run) -> ReplayPlan:
    return replay_plan(run_scope(run))


def replay_source(run: Run) -> RunRecord | None:
    """The record saying this run is a replay (its ``replay_of`` is the original's), or None."""
    record = RunRecord.objects.filter(scope=run_scope(run)).select_related("replay_of").first()
    if record is None or record.mode == ReplayMode.LIVE:
        return None
    return record


def run_replay(*, run: Run, allow_live: bool = False) -> Run:
    """A new run of the original's frozen questionnaire for the respondents who answered, with the same
    seed, so each is shown the same order and sends the same request. Missing answers: refused with how
    many, unless ``allow_live``."""
    if run.job is None or run.job.state != JobState.DONE:
        raise ApplicationError("Replay a survey run once it has finished.", code="not_finished", status_code=409)
    plan = replay_check(run)
    replay_refusal(plan, what="run", charged_like="a run", allow_live=allow_live)
    answered = list(run.respondents.filter(state=RespondentState.DONE).select_related("persona").order_by("position"))
    with transaction.atomic():
        copy = Run.objects.create(
            survey=run.survey,
            owner=run.owner,
            panel_label=run.panel_label,
            questions=run.questions,
            title=run.title,
            intro=run.intro,
            randomize_questions=run.randomize_questions,
            seed=run.seed,
            unit_cost=run.unit_cost,
        )
        replay_prepare(original_scope=run_scope(run), scope=run_scope(copy), allow_live=allow_live)
        run_begin(
            run=copy,
            personas=[respondent.persona for respondent in answered],
            profiles=[respondent.profile for respondent in answered],
            charge=allow_live,
        )
        # Positions as in the original: each respondent's question order is seeded by it.
        # Failed respondents leave gaps in the original's positions: one UPDATE for all, not one per row.
        moved = []
        for respondent, original in zip(copy.respondents.order_by("position"), answered, strict=True):
            if respondent.position != original.position:
                respondent.position = original.position
                moved.append(respondent)
        Respondent.objects.bulk_update(moved, ["position"])
    return copy
