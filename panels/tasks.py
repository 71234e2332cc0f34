from celery import shared_task

from panels import quality, runner


@shared_task(name="panels.tasks.write_member")
def write_member(member_id: int) -> str:
    return runner.member_write(member_id=member_id, dispatch=dispatch_member)


def dispatch_member(member_id: int) -> None:
    write_member.apply_async((member_id,), queue="llm")


@shared_task(name="panels.tasks.check_member")
def check_member(member_id: int) -> str:
    return quality.member_check(member_id=member_id, dispatch=dispatch_check_member)


def dispatch_check_member(member_id: int) -> None:
    check_member.apply_async((member_id,), queue="llm")
