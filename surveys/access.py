"""The audited way to get a survey, a run or a respondent for a user: not theirs → 404."""

from django.http import Http404

from surveys.models import Question, Respondent, Run, Survey


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("Not found") from None


def get_survey_for_user(request_or_user, survey_id) -> Survey:
    user = getattr(request_or_user, "user", request_or_user)
    survey = Survey.objects.filter(owner=user, pk=_int(survey_id)).first()
    if survey is None:
        raise Http404("No such survey")
    return survey


def get_question_for_user(request_or_user, survey_id, question_id) -> Question:
    survey = get_survey_for_user(request_or_user, survey_id)
    question = Question.objects.filter(survey=survey, pk=_int(question_id)).first()
    if question is None:
        raise Http404("No such question")
    return question


def get_run_for_user(request_or_user, run_id) -> Run:
    user = getattr(request_or_user, "user", request_or_user)
    run = Run.objects.select_related("survey", "job").filter(owner=user, pk=_int(run_id)).first()
    if run is None:
        raise Http404("No such survey run")
    return run


def get_respondent_for_user(request_or_user, run_id, respondent_id) -> Respondent:
    run = get_run_for_user(request_or_user, run_id)
    respondent = Respondent.objects.filter(run=run, pk=_int(respondent_id)).first()
    if respondent is None:
        raise Http404("No such respondent")
    return respondent
