"""The survey run job kind: one job per run (the work itself is in surveys/runner.py)."""

from cohorta.jobs.registry import job_kind
from surveys import runner
from surveys.models import Run
from surveys.tasks import answer_respondent


def survey_run_abandoned(job) -> None:
    """The run's worker died: close its open respondents and refund what they had reserved."""
    run = Run.objects.filter(pk=job.params.get("run_id")).first()
    if run is not None:
        runner.run_settle(run)


def _dispatch(respondent_id: int) -> None:
    answer_respondent.apply_async((respondent_id,), queue="llm")


@job_kind("survey_run", label="Survey run", on_abandon=survey_run_abandoned)
def survey_run(job, ctx):
    return runner.run_execute(job, ctx, dispatch=_dispatch)
