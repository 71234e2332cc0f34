"""The survey job kinds. ``survey_run``: one job per run; its handler only hands out the first respondents,
their tasks carry the run on and the last one finishes the job (surveys/runner.py). ``survey_panel``: one
job per brief of a generated panel, which hands on to the next brief's job and the last to the run
(surveys/panel.py). ``survey_themes``: the themes of a run's open answers (surveys/themes.py), started
when the run finishes or from its results page. ``survey_quality``: a run's quality check (surveys/quality/),
which hands off to the end of its retest run."""

from cohorta.jobs.registry import job_kind
from surveys import panel, runner, themes
from surveys.models import Run
from surveys.quality import runner as quality_runner
from surveys.quality.services import JOB_KIND as QUALITY_JOB_KIND
from surveys.tasks import dispatch_respondent


def survey_run_abandoned(job) -> None:
    """The run stopped (cancelled, or its worker died): close its open respondents and refund them."""
    run = Run.objects.filter(pk=job.params.get("run_id")).first()
    if run is not None:
        runner.run_settle(run)


def survey_run_watch(job) -> bool:
    run = Run.objects.filter(pk=job.params.get("run_id")).first()
    if run is None:
        return False  # its survey was deleted: nothing is left to wait for
    return runner.run_watch(run, dispatch=dispatch_respondent)


@job_kind("survey_run", label="Survey run", on_abandon=survey_run_abandoned, watch=survey_run_watch)
def survey_run(job, ctx):
    return runner.run_execute(job, ctx, dispatch=dispatch_respondent)


@job_kind("survey_panel", label="Survey panel generation", on_abandon=panel.panel_abandoned)
def survey_panel(job, ctx):
    return panel.panel_generate(job, ctx)


@job_kind(themes.JOB_KIND, label="Survey themes")
def survey_themes(job, ctx):
    return themes.themes_execute(job, ctx)


@job_kind(
    QUALITY_JOB_KIND,
    label="Survey quality check",
    on_abandon=quality_runner.quality_abandoned,
    watch=quality_runner.quality_watch,
)
def survey_quality(job, ctx):
    return quality_runner.quality_execute(job, ctx)
