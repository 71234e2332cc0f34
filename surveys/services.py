"""Writes for surveys: questionnaires, their questions, starting a run on a panel, and finding the
themes of its open answers.

Starting a run answers at once: it checks the questionnaire and the panel, reserves the credits
(402 before any work when they are short) and creates one Job; the work runs in surveys/runner.py.
A run on a generated panel waits for its personas first (surveys/panel.py).
Finding themes (surveys/themes.py) is one Job per run too, free of credits like the focus-group analysis.
"""

import logging
import math
import random
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Max

from billing.selectors import credits_balance
from billing.services import credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import ACTIVE_STATES, Job
from cohorta.jobs.services import job_create
from panels.models import Panel
from personas.generation import MAX_COUNT as GENERATION_MAX_COUNT
from personas.generation import brief_create
from personas.models import Folder, GenerationBrief, Persona
from personas.services import folder_create
from surveys import themes
from surveys.models import QualityCheck, Question, Respondent, Run, Survey
from surveys.questionnaire import question_clean, questions_clean
from surveys.selectors import themes_jobs_of

logger = logging.getLogger(__name__)

EDITABLE = ("title", "intro", "randomize_questions")


def _survey_fields(title, intro) -> tuple[str, str]:
    title = (title or "").strip()
    if not title:
        raise ApplicationError(
            "Give the survey a title.", code="validation_error", extra={"fields": {"title": ["Required."]}}
        )
    return title[:200], (intro or "").strip()[:4000]


@transaction.atomic
def survey_create(*, owner, title: str, intro: str = "", randomize_questions: bool = False, questions=None) -> Survey:
    title, intro = _survey_fields(title, intro)
    cleaned = questions_clean(questions) if questions is not None else []
    survey = Survey.objects.create(owner=owner, title=title, intro=intro, randomize_questions=bool(randomize_questions))
    for position, data in enumerate(cleaned):
        Question.objects.create(survey=survey, position=position, **data)
    return survey


@transaction.atomic
def survey_update(*, survey: Survey, questions=None, **fields) -> Survey:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Not editable: {sorted(unknown)}")
    if "title" in fields or "intro" in fields:
        survey.title, survey.intro = _survey_fields(
            fields.get("title", survey.title), fields.get("intro", survey.intro)
        )
    if "randomize_questions" in fields:
        survey.randomize_questions = bool(fields["randomize_questions"])
    survey.save()
    if questions is not None:
        cleaned = questions_clean(questions)
        survey.questions.all().delete()
        for position, data in enumerate(cleaned):
            Question.objects.create(survey=survey, position=position, **data)
    return survey


def survey_delete(*, survey: Survey) -> None:
    survey.delete()


def question_create(*, survey: Survey, data: dict) -> Question:
    clean = question_clean(data)
    position = (survey.questions.aggregate(top=Max("position"))["top"] or 0) + 1
    return Question.objects.create(survey=survey, position=position, **clean)


def question_update(*, question: Question, data: dict) -> Question:
    for field, value in question_clean(data).items():
        setattr(question, field, value)
    question.save()
    return question


def question_delete(*, question: Question) -> None:
    question.delete()


@transaction.atomic
def question_move(*, question: Question, direction: str) -> None:
    """Move a question one place up or down; positions are renumbered 0…n-1."""
    ordered = list(question.survey.questions.select_for_update().order_by("position", "id"))
    index = next(i for i, q in enumerate(ordered) if q.pk == question.pk)
    target = index - 1 if direction == "up" else index + 1
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, item in enumerate(ordered):
        if item.position != position:
            Question.objects.filter(pk=item.pk).update(position=position)


# --- runs ------------------------------------------------------------------------------------------


def run_unit_cost(*, question_count: int) -> int:
    """Credits per respondent: a price per block of questions, blocks rounded up."""
    app = get_app_settings()
    return app.survey_credits_per_block * math.ceil(question_count / app.survey_questions_per_block)


def frozen_questions(survey: Survey) -> list[dict]:
    return [
        {
            "id": q.pk,
            "number": number,
            "kind": q.kind,
            "text": q.text,
            "labels": q.labels,
            "options": q.options,
            "randomize_options": q.randomize_options,
            "anchor_preset": q.anchor_preset,
            "anchor_sets": q.anchor_sets,
            "direct_elicitation": q.direct_elicitation,
        }
        for number, q in enumerate(survey.questions.order_by("position", "id"), start=1)
    ]


def persona_profile(persona: Persona) -> dict:
    """What a respondent is segmented by and answers from, frozen with the run; a panel's personas bring
    their sampled core (race, region… as well as the profile's fields) to segment by."""
    profile = {"name": persona.name, **{k: v for k, v in persona.profile_data().items() if k != "name"}}
    if persona.core:
        profile["sampled"] = list(persona.core)
    return profile


def panel_personas(panel: Panel) -> list[Persona]:
    """A sampled panel's written personas, in the order they were drawn."""
    return list(Persona.objects.filter(owner=panel.owner, panel_member__panel=panel).order_by("panel_member__position"))


def _panel(*, owner, folder: Folder | None, persona_ids) -> tuple[list[Persona], str]:
    if folder is not None:
        if folder.owner_id != owner.pk:
            raise ApplicationError("No such folder.", code="not_found", status_code=404)
        return list(Persona.objects.filter(owner=owner, folder=folder).order_by("name", "id")), folder.name
    ids = []
    for value in persona_ids or []:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    found = Persona.objects.filter(owner=owner, pk__in=ids).in_bulk()
    personas = [found[pk] for pk in dict.fromkeys(ids) if pk in found]
    if len(personas) != len(dict.fromkeys(ids)):
        raise ApplicationError(
            "Some of those personas do not exist (or are not yours).", code="not_found", status_code=404
        )
    return personas, f"{len(personas)} selected persona{'s' if len(personas) != 1 else ''}"


def _questions_to_run(survey: Survey) -> list[dict]:
    questions = frozen_questions(survey)
    if not questions:
        raise ApplicationError(
            "This survey has no questions yet. Add at least one question, then run it.",
            code="empty_questionnaire",
            extra={"fields": {"questions": ["Add at least one question."]}},
        )
    return questions


def run_start(
    *,
    survey: Survey,
    folder: Folder | None = None,
    persona_ids=None,
    generate: dict | None = None,
    panel: Panel | None = None,
    charge: bool = True,
) -> Run:
    """Check the questionnaire and the panel, reserve the credits, create the run's job. With ``generate``
    (``{"description", "size"}``) the panel is generated first: see ``run_start_generated``. With ``panel``
    the run asks a sampled panel's personas. ``charge=False``: an exact replay the cache answers."""
    questions = _questions_to_run(survey)
    if generate is not None:
        return run_start_generated(survey=survey, questions=questions, **generate)
    if panel is not None:
        if panel.owner_id != survey.owner_id:
            raise ApplicationError("No such panel.", code="not_found", status_code=404)
        if panel.job_id is not None and Job.objects.filter(pk=panel.job_id, state__in=ACTIVE_STATES).exists():
            raise ApplicationError(
                f"The panel “{panel.name}” is still being written. Run the survey when it is ready.",
                code="panel_not_ready",
                extra={"fields": {"panel": ["Still being written."]}},
            )
        personas, label = panel_personas(panel), f"Panel: {panel.name}"
    else:
        personas, label = _panel(owner=survey.owner, folder=folder, persona_ids=persona_ids)
    limit = get_app_settings().survey_max_panel
    if not personas:
        where = (
            "This panel has no personas"
            if panel is not None
            else "This folder has no personas"
            if folder is not None
            else "No personas were picked"
        )
        raise ApplicationError(
            f"{where}. Pick a folder with personas, or tick at least one persona.",
            code="empty_panel",
            extra={"fields": {"panel": ["The panel is empty."]}},
        )
    if len(personas) > limit:
        raise ApplicationError(
            f"A run can ask at most {limit} personas; this panel has {len(personas)}. Pick fewer.",
            code="panel_too_large",
            extra={"fields": {"panel": [f"At most {limit} personas."]}, "limit": limit},
        )
    with transaction.atomic():
        run = _run_create(survey=survey, questions=questions, panel_label=label)
        run_begin(run=run, personas=personas, charge=charge)
    return run


def _run_create(*, survey: Survey, questions: list[dict], panel_label: str, **fields) -> Run:
    return Run.objects.create(
        survey=survey,
        owner=survey.owner,
        panel_label=panel_label[:200],
        questions=questions,
        title=survey.title,
        intro=survey.intro,
        randomize_questions=survey.randomize_questions,
        seed=random.SystemRandom().randrange(1, 2**31),
        unit_cost=run_unit_cost(question_count=len(questions)),
        **fields,
    )


def run_begin(
    *, run: Run, personas: Sequence[Persona | None], profiles: list[dict] | None = None, charge: bool = True
) -> Run:
    """Put the panel on the run, reserve its credits (InsufficientCredits: nothing reserved) and create its
    job. Inside the caller's transaction. ``profiles``: what each respondent is told they are (an exact
    replay passes the original's, as they were then); ``charge=False`` for a replay the cache answers."""
    unit = run_unit_cost(question_count=len(run.questions))
    cost = unit * len(personas) if charge else 0
    if profiles is None:
        # A replay passes the profiles it had: only it can list a persona deleted since (None).
        profiles = [persona_profile(persona) if persona is not None else {} for persona in personas]
    Respondent.objects.bulk_create(
        Respondent(run=run, persona=persona, position=position, profile=profile)
        for position, (persona, profile) in enumerate(zip(personas, profiles, strict=True))
    )
    if cost:
        credits_spend(
            user=run.owner,
            amount=cost,
            idempotency_key=f"survey-run:{run.pk}:reserve",
            reference=f"survey-run:{run.pk}",
            description=f"Survey “{run.title[:60]}”: {len(personas)} respondents × {len(run.questions)} questions",
        )
    run.unit_cost = unit if charge else 0  # what a failed respondent gets back
    run.job = job_create(
        owner=run.owner,
        kind="survey_run",
        target=run,
        total=len(personas),
        params={"run_id": run.pk},
        message="Waiting to start",
    )
    run.save(update_fields=["job", "unit_cost"])
    return run


# --- a generated panel -----------------------------------------------------------------------------

# The smallest panel worth generating for a survey (its statistics need a few respondents); the largest
# is the App settings' *largest survey panel*.
GENERATED_PANEL_MIN = 5


def generated_panel_limits() -> tuple[int, int]:
    return GENERATED_PANEL_MIN, max(GENERATED_PANEL_MIN, get_app_settings().survey_max_panel)


def brief_chunks(size: int) -> list[int]:
    """A panel in even briefs of at most what one generation brief may ask (50 → 17, 17, 16)."""
    parts = math.ceil(size / GENERATION_MAX_COUNT)
    return [size // parts + (1 if index < size % parts else 0) for index in range(parts)]


def _generated_panel_clean(description, size) -> tuple[str, int]:
    description = str(description or "").strip()
    if len(description) < 10:
        raise ApplicationError(
            "Describe the people to generate in a sentence or two (at least 10 characters), e.g. "
            "“UK parents of young children who shop for groceries online”.",
            code="validation_error",
            extra={"fields": {"panel_description": ["Describe the audience (at least 10 characters)."]}},
        )
    low, high = generated_panel_limits()
    try:
        size = int(size)
    except (TypeError, ValueError):
        size = None
    if size is None or not low <= size <= high:
        raise ApplicationError(
            f"A generated panel has {low} to {high} personas"
            + (f"; you asked for {size}." if size is not None else ": give a whole number."),
            code="panel_too_large" if size is not None and size > high else "panel_size",
            extra={"fields": {"panel_size": [f"From {low} to {high}."]}, "limit": high, "minimum": low},
        )
    return description[:4000], size


def _panel_folder_name(*, owner, title: str) -> str:
    base = f"{title[:80]} panel"
    taken = set(Folder.objects.filter(owner=owner, name__startswith=base).values_list("name", flat=True))
    number = 1
    name = base
    while name in taken:
        number += 1
        name = f"{base} ({number})"
    return name


def generated_panel_cost(*, size: int, question_count: int) -> tuple[int, int]:
    """Credits to generate ``size`` personas, and to run a questionnaire of ``question_count`` on them."""
    return get_app_settings().persona_credit_cost * size, run_unit_cost(question_count=question_count) * size


def run_start_generated(*, survey: Survey, questions: list[dict], description="", size=None) -> Run:
    """A run on a panel generated for it: the personas are generated, one brief of at most 20 at a time,
    into a new folder named after the survey, by a ``survey_panel`` job (surveys/panel.py), and the run
    starts when the last brief is done. The generation's credits are reserved now, per brief, as persona
    generation reserves them; the run's when it starts. Both must be affordable now (402 otherwise, and
    nothing is charged)."""
    owner = survey.owner
    description, size = _generated_panel_clean(description, size)
    generation_cost, run_cost = generated_panel_cost(size=size, question_count=len(questions))
    balance = credits_balance(user=owner)
    if generation_cost + run_cost > balance:
        raise InsufficientCredits(
            f"This needs {generation_cost + run_cost} credits: {generation_cost} to generate {size} personas and "
            f"{run_cost} to run the survey on them; you have {balance}. Buy credits on the Billing page.",
            extra={"required": generation_cost + run_cost, "balance": balance},
        )
    with transaction.atomic():
        folder = folder_create(owner=owner, name=_panel_folder_name(owner=owner, title=survey.title))
        briefs, unit_cost = [], 0
        for count in brief_chunks(size):
            brief, unit_cost = brief_create(owner=owner, description=description, count=count, folder=folder)
            briefs.append(brief)
        run = _run_create(
            survey=survey,
            questions=questions,
            panel_label=folder.name,
            panel_size=size,
            panel_description=description,
            panel_folder=folder,
        )
        run.panel_briefs.set(briefs)
        panel_job_create(run=run, brief_ids=[brief.pk for brief in briefs], index=0, unit_cost=unit_cost)
    return run


def panel_job_create(*, run: Run, brief_ids: list[int], index: int, unit_cost: int):
    """The job that generates brief ``index`` of the run's panel (and, when done, the next, or the run)."""
    job = job_create(
        owner=run.owner,
        kind="survey_panel",
        target=run,
        total=run.panel_size,
        params={"run_id": run.pk, "brief_ids": brief_ids, "index": index, "unit_cost": unit_cost},
        message=f"Waiting to generate {run.panel_size} personas",
    )
    GenerationBrief.objects.filter(pk=brief_ids[index]).update(job=job)
    run.panel_job = job
    run.save(update_fields=["panel_job"])
    return job


# --- themes of the open answers -----------------------------------------------------------------------


def themes_start(*, run: Run) -> Job:
    """Find the themes of the run's open answers; answers at once with the job. Free (no credits), metered.
    A theme job already waiting or running for the run is returned rather than doubled; the themes found
    before stay until the new ones are ready."""
    job = _themes_job(run, only_first=False)
    assert job is not None  # only a first job is ever declined
    return job


def themes_on_run_end(run: Run) -> Job | None:
    """Called as a run finishes: find its themes once, when it has open answers. Never raises into the run."""
    try:
        if not run.owner.is_active or not themes.has_open_answers(run):
            return None
        if QualityCheck.objects.filter(retest_run=run).exists():
            return None  # a quality check's retest: its answers are there to be compared, not read for themes
        return _themes_job(run, only_first=True)
    except ApplicationError as exc:
        logger.info("No themes for survey run %s at its end: %s", run.pk, exc.message)
        return None


def _themes_job(run: Run, *, only_first: bool) -> Job | None:
    if run.job_id is not None and Job.objects.filter(pk=run.job_id, state__in=ACTIVE_STATES).exists():
        raise ApplicationError(
            "The run is still going: themes can be found once everyone has answered.",
            code="run_active",
            status_code=409,
        )
    if not themes.has_open_answers(run):
        raise ApplicationError(
            f"There is nothing to find themes in: themes need an open-text question with at least "
            f"{themes.MIN_ANSWERS} usable answers.",
            code="no_open_answers",
            status_code=409,
        )
    with transaction.atomic():
        # Locked, so two clicks (or the two last respondents finishing together) start one job.
        Run.objects.select_for_update().filter(pk=run.pk).first()
        latest = themes_jobs_of(run=run).first()
        if latest is not None and (only_first or latest.state in ACTIVE_STATES):
            return None if only_first else latest
        return job_create(
            owner=run.owner,
            kind=themes.JOB_KIND,
            target=run,
            total=1,
            params={"run_id": run.pk},
            message="Waiting to start",
        )
