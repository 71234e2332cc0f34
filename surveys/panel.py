"""A survey run on a generated panel: the personas first, then the run, with no worker thread waiting.

``services.run_start_generated`` creates the run without a job, a folder named after the survey and one
generation brief per chunk of at most 20 personas (each with its credits reserved, as persona generation
reserves them), and the ``survey_panel`` job for the first brief. That job generates its brief exactly as
a persona generation job does (``personas.jobs.brief_generate``: same prompts, same per-persona refunds),
reporting the panel's progress as a whole; then it creates the job for the next brief, and the last one
starts the run (``services.run_begin``: the run's credits are reserved then). The chunks go one after
the other, so each is told the names already taken.

A generation that fails, is cancelled or whose worker dies leaves the run not started, saying why
(``Run.not_started``), with nothing reserved for the run; the briefs not yet generated are refunded in
full, and the personas already made stay in the folder.
"""

import logging

from django.db import transaction
from django.db.models import Count

from cohorta.errors import InsufficientCredits
from cohorta.jobs.errors import JobCancelled, JobFailure
from cohorta.jobs.models import Job, JobState
from personas.jobs import brief_generate, brief_settle
from personas.models import Folder, GenerationBrief, Persona
from surveys import services
from surveys.models import Run

logger = logging.getLogger(__name__)


def generation_message(size: int, done: int) -> str:
    return f"Generating {size} personas… {done} done"


class PanelProgress:
    """What a brief's generation reports, told as the panel's progress: ``12 of 17 ready`` in the second
    brief of 50 is ``Generating 50 personas… 29 done``; its steps (``Sketching 17 people…``) are kept."""

    def __init__(self, ctx, *, offset: int, size: int) -> None:
        self.ctx, self.offset, self.size = ctx, offset, size

    def progress(self, done: int | None = None, total: int | None = None, message: str | None = None) -> None:
        overall = self.offset + (done or 0)
        text = generation_message(self.size, overall)
        if message and not message[:1].isdigit():
            text += f" · {message}"
        self.ctx.progress(overall, self.size, text)

    def check_cancelled(self) -> None:
        self.ctx.check_cancelled()


def _personas(brief_ids: list[int]) -> list[Persona]:
    return list(Persona.objects.filter(brief_id__in=brief_ids).order_by("created_at", "id"))


def _where(run: Run, brief_ids: list[int]) -> str:
    made = Persona.objects.filter(brief_id__in=brief_ids).count()
    folder = run.panel_folder.name if run.panel_folder else "the panel's folder"
    if not made:
        return "No persona was generated, and the credits for generating them were refunded."
    return (
        f"The {made} persona{'s' if made != 1 else ''} generated before it stopped "
        f"{'are' if made != 1 else 'is'} in the folder “{folder}” (and paid for); credits for the rest "
        "were refunded."
    )


def panel_give_up(run: Run | None, *, brief_ids: list[int], unit_cost: int, why: str) -> None:
    """The panel will not be finished: refund every brief not delivered and mark the run not started, if it
    has not started. Idempotent."""
    for brief in GenerationBrief.objects.filter(pk__in=brief_ids):
        brief_settle(brief, unit_cost=unit_cost)
    if run is None:
        return
    # A provider's long error is cut, not what the researcher needs to read after it.
    why = why if len(why) <= 240 else why[:239] + "…"
    reason = f"{why} {_where(run, brief_ids)} Nothing was charged for the survey run."
    Run.objects.filter(pk=run.pk, job__isnull=True, not_started="").update(not_started=reason[:500])


def panel_generate(job, ctx):
    """The ``survey_panel`` job: generate one brief of the panel, then hand on to the next or to the run."""
    params = job.params
    brief_ids, index, unit_cost = list(params["brief_ids"]), int(params["index"]), int(params["unit_cost"])
    run = Run.objects.select_related("panel_folder").filter(pk=params["run_id"]).first()
    if run is None:  # its survey was deleted: generate nothing more
        panel_give_up(None, brief_ids=brief_ids, unit_cost=unit_cost, why="")
        return {"stopped": "The survey was deleted."}
    if run.job_id is not None or run.not_started:
        raise JobFailure("This panel's run has already ended. Start a new run from the survey.")
    brief = GenerationBrief.objects.select_related("owner", "folder").get(pk=brief_ids[index])
    offset = sum(GenerationBrief.objects.filter(pk__in=brief_ids[:index]).values_list("count", flat=True))
    try:
        result = brief_generate(brief, job, PanelProgress(ctx, offset=offset, size=run.panel_size), unit_cost=unit_cost)
        ctx.check_cancelled()
    except JobCancelled:
        panel_give_up(run, brief_ids=brief_ids, unit_cost=unit_cost, why="You cancelled the panel's generation.")
        raise
    except JobFailure as exc:
        panel_give_up(run, brief_ids=brief_ids, unit_cost=unit_cost, why=f"The panel could not be generated: {exc}")
        raise
    except Exception:
        panel_give_up(
            run, brief_ids=brief_ids, unit_cost=unit_cost, why="An unexpected error stopped the panel's generation."
        )
        raise
    if index + 1 < len(brief_ids):
        with transaction.atomic():
            services.panel_job_create(run=run, brief_ids=brief_ids, index=index + 1, unit_cost=unit_cost)
        return {**result, "next": index + 1}
    return {**result, **panel_run_start(run, brief_ids=brief_ids)}


def panel_run_start(run: Run, *, brief_ids: list[int]) -> dict:
    """Start the run on the personas generated for it; the run's credits are reserved now."""
    personas = _personas(brief_ids)
    if not personas:
        reason = "No persona could be generated for the panel; their credits were refunded. Nothing was charged "
        reason += "for the survey run: try again, perhaps with a shorter description."
        Run.objects.filter(pk=run.pk, job__isnull=True, not_started="").update(not_started=reason)
        return {"run_started": False}
    try:
        with transaction.atomic():
            locked = Run.objects.select_for_update().get(pk=run.pk)
            if locked.job_id is not None or locked.not_started:
                return {"run_started": locked.job_id is not None}
            if len(personas) < run.panel_size:
                locked.panel_label = f"{locked.panel_label[:150]} ({len(personas)} of {run.panel_size} generated)"
                locked.save(update_fields=["panel_label"])
            services.run_begin(run=locked, personas=personas)
    except InsufficientCredits as exc:
        folder = run.panel_folder.name if run.panel_folder else "the panel's folder"
        reason = (
            f"The panel is ready (in the folder “{folder}”), but the run could not start: {exc.message} "
            "Nothing was reserved for the run; run the survey on that folder when you have the credits."
        )
        Run.objects.filter(pk=run.pk, job__isnull=True, not_started="").update(not_started=reason[:500])
        return {"run_started": False}
    return {"run_started": True}


def panel_abandoned(job) -> None:
    """The panel's job stopped without its handler (cancelled before it started, or its worker died)."""
    params = job.params
    run = Run.objects.select_related("panel_folder").filter(pk=params.get("run_id")).first()
    why = {
        JobState.CANCELLED: "You cancelled the panel's generation.",
        JobState.INTERRUPTED: "The worker generating the panel stopped responding.",
    }.get(job.state, "The panel's generation stopped.")
    panel_give_up(run, brief_ids=list(params.get("brief_ids", [])), unit_cost=int(params.get("unit_cost", 0)), why=why)


# --- what the run page and the API show ------------------------------------------------------------------


def panel_status(run: Run) -> dict | None:
    """A generated panel's state: ``generating`` (with progress), ``done`` (the run started) or
    ``failed`` (the run did not start: ``reason`` says why). None for a folder or a selection."""
    return panel_statuses([run])[run.pk]


def panel_statuses(runs: list[Run]) -> dict[int, dict | None]:
    """``panel_status`` of each run, by run id, in at most five queries however many runs (a list of runs)."""
    generated_runs = [run for run in runs if run.panel_size]
    statuses: dict[int, dict | None] = {run.pk: None for run in runs}
    if not generated_runs:
        return statuses
    jobs = Job.objects.in_bulk([run.panel_job_id for run in generated_runs if run.panel_job_id])
    through = Run.panel_briefs.through.objects.filter(
        run_id__in=[run.pk for run in generated_runs if jobs.get(run.panel_job_id) is None]
    )
    linked: dict[int, list[int]] = {}
    for run_id, brief_id in through.order_by("generationbrief_id").values_list("run_id", "generationbrief_id"):
        linked.setdefault(run_id, []).append(brief_id)
    brief_ids_of = {}
    for run in generated_runs:
        job = jobs.get(run.panel_job_id)
        brief_ids_of[run.pk] = list(job.params.get("brief_ids", [])) if job else linked.get(run.pk, [])
    every_brief = {pk for ids in brief_ids_of.values() for pk in ids}
    made = dict(
        Persona.objects.filter(brief_id__in=every_brief)
        .order_by()
        .values("brief_id")
        .annotate(n=Count("pk"))
        .values_list("brief_id", "n")
    )
    sizes = dict(GenerationBrief.objects.filter(pk__in=every_brief).values_list("pk", "count"))
    folders = Folder.objects.in_bulk([run.panel_folder_id for run in generated_runs if run.panel_folder_id])
    for run in generated_runs:
        job = jobs.get(run.panel_job_id)
        brief_ids = brief_ids_of[run.pk]
        generated = sum(made.get(pk, 0) for pk in brief_ids)
        index = int(job.params.get("index", 0)) if job else 0
        offset = sum(sizes.get(pk, 0) for pk in brief_ids[:index])
        done = max(offset, job.progress_done if job else 0)
        if run.job_id is not None:
            state, done = "done", run.panel_size
        elif run.not_started:
            state = "failed"
        elif job is None or job.is_terminal:
            state = "failed"  # ended without saying why (should not happen: its end sets the reason)
        else:
            state = "generating"
        reason = run.not_started or ("The panel's generation stopped." if state == "failed" else "")
        folder = folders.get(run.panel_folder_id)
        statuses[run.pk] = {
            "state": state,
            "description": run.panel_description,
            "size": run.panel_size,
            "done": min(done, run.panel_size),
            "generated": generated,
            "folder_id": run.panel_folder_id,
            "folder": folder.name if folder else "",
            "job_id": str(job.pk) if job else None,
            "job_state": job.state if job else None,
            "cancel_requested": bool(job and job.cancel_requested),
            "message": generation_message(run.panel_size, min(done, run.panel_size)),
            "reason": reason,
        }
    return statuses
