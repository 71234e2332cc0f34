from celery import shared_task

from surveys import runner


@shared_task(name="surveys.tasks.answer_respondent")
def answer_respondent(respondent_id: int) -> str:
    return runner.respondent_answer(respondent_id=respondent_id, dispatch=dispatch_respondent)


def dispatch_respondent(respondent_id: int) -> None:
    answer_respondent.apply_async((respondent_id,), queue="llm")
