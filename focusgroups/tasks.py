from celery import shared_task

from focusgroups import discussion
from focusgroups.live_themes import refresh_live_themes  # noqa: F401  (registered here like the others)


@shared_task(name="focusgroups.tasks.generate_answer")
def generate_answer(answer_id: str) -> None:
    discussion.answer_generate(answer_id=answer_id)


@shared_task(name="focusgroups.tasks.refresh_summary")
def refresh_summary(focus_group_id: int) -> None:
    discussion.summary_refresh(focus_group_id=focus_group_id)


@shared_task(name="focusgroups.tasks.autonomous_turn")
def autonomous_turn(run_id: int, turn: int) -> str:
    from focusgroups.autonomous import turn_run

    return turn_run(run_id=run_id, turn=turn)


@shared_task(name="focusgroups.tasks.reap_runs")
def reap_runs() -> int:
    from focusgroups.autonomous import runs_reap

    return runs_reap()
