"""Getting a survey, a run or something in them for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from surveys.models import Question, Respondent, Run, Survey


def get_survey_for_user(user, pk, *, for_write: bool = False) -> Survey:
    return owned_or_404(Survey.objects.all(), user=user, pk=pk, what="survey")


def get_question_for_user(user, pk, *, survey_id, for_write: bool = False) -> Question:
    return owned_or_404(
        Question.objects.filter(survey_id=get_survey_for_user(user, survey_id).pk),
        user=user,
        pk=pk,
        owner_field="survey__owner",
        what="question",
    )


def get_run_for_user(user, pk, *, for_write: bool = False) -> Run:
    return owned_or_404(Run.objects.select_related("survey", "job"), user=user, pk=pk, what="survey run")


def get_respondent_for_user(user, pk, *, run_id, for_write: bool = False) -> Respondent:
    return owned_or_404(
        Respondent.objects.filter(run_id=get_run_for_user(user, run_id).pk),
        user=user,
        pk=pk,
        owner_field="run__owner",
        what="respondent",
    )
