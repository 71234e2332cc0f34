"""Reads for surveys, always scoped to their owner."""

from django.db.models import Count, F, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import JSONObject

from cohorta.jobs.fanout import STATES
from cohorta.jobs.models import Job
from cohorta.jobs.selectors import jobs_for_target
from personas.models import Folder, Persona
from surveys.models import Answer, Respondent, RespondentState, Run, Survey
from surveys.themes import JOB_KIND as THEMES_JOB_KIND


def surveys_for_user(*, user) -> QuerySet[Survey]:
    latest = Run.objects.filter(survey=OuterRef("pk")).order_by("-created_at", "-id")
    return Survey.objects.filter(owner=user).annotate(
        question_count=Count("questions", distinct=True),
        run_count=Count("runs", distinct=True),
        last_run_at=Max("runs__created_at"),
        last_run_id=Subquery(latest.values("pk")[:1]),
    )


def runs_for_survey(*, survey: Survey) -> QuerySet[Run]:
    return Run.objects.filter(survey=survey).select_related("job").annotate(respondent_count=Count("respondents"))


def respondent_counts_by_run(*, run_ids) -> dict[int, dict[str, int]]:
    """Each run's respondents by state and in all (as ``runner.run_counts`` gives one run's), in one query."""
    counts = {run_id: {"total": 0, **dict.fromkeys(STATES, 0)} for run_id in run_ids}
    rows = Respondent.objects.filter(run_id__in=list(counts)).order_by().values("run_id", "state")
    for row in rows.annotate(n=Count("pk")):
        run_counts = counts[row["run_id"]]
        run_counts["total"] += row["n"]
        if row["state"] in run_counts:
            run_counts[row["state"]] += row["n"]
    return counts


def folders_with_counts(*, user) -> QuerySet[Folder]:
    return Folder.objects.filter(owner=user).annotate(persona_count=Count("personas")).order_by("name")


def has_personas(*, user) -> bool:
    return Persona.objects.filter(owner=user).exists()


def personas_for_panel(*, user, limit: int = 500) -> list[Persona]:
    return list(Persona.objects.filter(owner=user).select_related("folder").order_by("name", "id")[:limit])


def respondents_of(*, run: Run) -> QuerySet[Respondent]:
    return Respondent.objects.filter(run=run).order_by("position", "id")


def respondents_listed(*, run: Run) -> QuerySet[Respondent]:
    """The run's respondents for the list on its page: of each profile only what the list shows (``listed``:
    name, age, gender, location), not the whole profile (~2 KB each; a run has up to 1,000)."""
    return (
        respondents_of(run=run)
        .defer("profile")
        .annotate(
            listed=JSONObject(
                name=F("profile__name"),
                age=F("profile__age"),
                gender=F("profile__gender"),
                location=F("profile__location"),
            )
        )
    )


def answered_respondents_of(*, run: Run) -> QuerySet[Respondent]:
    return Respondent.objects.filter(run=run, state=RespondentState.DONE).order_by("position", "id")


def answers_of(*, respondent: Respondent) -> QuerySet[Answer]:
    return Answer.objects.filter(respondent=respondent).order_by("shown_position")


def answers_of_run(*, run: Run) -> QuerySet[Answer]:
    return (
        Answer.objects.filter(respondent__run=run)
        .select_related("respondent")
        .order_by("respondent__position", "respondent_id", "shown_position")
    )


def themes_jobs_of(*, run: Run) -> QuerySet[Job]:
    """The run's theme jobs, newest first, in any state."""
    return jobs_for_target(target=run, kind=THEMES_JOB_KIND).order_by("-created_at")


def run_from_scope(*, owner, scope: str) -> Run | None:
    """The owner's run kept under ``scope`` (surveys.scopes.run_scope), or None."""
    prefix, _, pk = scope.partition(":")
    if prefix != "surveyrun" or not pk.isdigit():
        return None
    return Run.objects.filter(owner=owner, pk=int(pk)).first()
