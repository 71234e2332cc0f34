"""The focus groups' Celery tasks: each takes ids and calls the service that does the work."""

from celery import shared_task

from focusgroups import conversation
from focusgroups.autonomous import runs, turns
from focusgroups.discussion import services as discussion
from focusgroups.quality import conformity
from focusgroups.report import live_themes


@shared_task(name="focusgroups.tasks.generate_answer")
def generate_answer(answer_id: str) -> None:
    discussion.answer_generate(answer_id=answer_id)


@shared_task(name="focusgroups.tasks.generate_round")
def generate_round(answer_ids: list[str]) -> None:
    discussion.round_generate(answer_ids=answer_ids)


@shared_task(name="focusgroups.tasks.refresh_summary")
def refresh_summary(focus_group_id: int) -> None:
    conversation.summary_refresh(focus_group_id=focus_group_id)


@shared_task(name="focusgroups.tasks.autonomous_turn")
def autonomous_turn(run_id: int, turn: int) -> str:
    return turns.turn_run(run_id=run_id, turn=turn)


@shared_task(name="focusgroups.tasks.reap_runs")
def reap_runs() -> int:
    return runs.runs_reap()


@shared_task(name="focusgroups.tasks.refresh_live_themes")
def refresh_live_themes(focus_group_id: int) -> str:
    return live_themes.live_themes_refresh(focus_group_id=focus_group_id)


@shared_task(name="focusgroups.tasks.conformity_before")
def conformity_before(focus_group_id: int, answer_ids: list[str]) -> None:
    """The first moderated round: the private answers first, then the round's answers."""
    conformity.before_round(focus_group_id=focus_group_id)
    discussion.round_generate(answer_ids=answer_ids)


@shared_task(name="focusgroups.tasks.reap_answers")
def reap_answers() -> int:
    return discussion.answers_reap()


@shared_task(name="focusgroups.tasks.reap_conformity")
def reap_conformity() -> int:
    return conformity.conformity_reap()


@shared_task(name="focusgroups.tasks.conformity_after")
def conformity_after(focus_group_id: int) -> int:
    return conformity.after_round(focus_group_id=focus_group_id)
