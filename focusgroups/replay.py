"""Exact replay of a finished autonomous session: the same participants, guide and materials, every AI answer
taken from the response cache in the order the original got it, so the transcript comes out byte for byte
the same without a request to the AI provider (llm.replay). A replay that may ask the provider for what the
cache lost is charged like a run; a complete replay is free."""

from django.db import transaction

from cohorta.errors import ApplicationError
from focusgroups.autonomous.runs import run_start
from focusgroups.guide.services import guide_sections
from focusgroups.models import FocusGroup, FocusGroupStatus
from focusgroups.report.comparison import session_copy
from llm.models import ReplayMode, RunRecord
from llm.replay import ReplayPlan, focus_group_scope, replay_plan, replay_prepare, replay_refusal


def session_scope(focus_group: FocusGroup) -> str:
    return focus_group_scope(focus_group.pk)


def replay_check(focus_group: FocusGroup) -> ReplayPlan:
    """How many of the session's AI answers the cache still holds."""
    return replay_plan(session_scope(focus_group))


def replay_of(focus_group: FocusGroup) -> RunRecord | None:
    """The run record saying this session is a replay (and of what), or None for a live session."""
    record = RunRecord.objects.filter(scope=session_scope(focus_group)).select_related("replay_of").first()
    if record is None or record.mode == ReplayMode.LIVE:
        return None
    return record


def session_replay(*, focus_group: FocusGroup, allow_live: bool = False) -> FocusGroup:
    """A copy of the session that runs its guide again with every AI answer from the cache. With missing
    answers it refuses (saying how many) unless ``allow_live``: then the provider is asked for those only,
    and the run is charged."""
    if focus_group.status != FocusGroupStatus.ENDED:
        raise ApplicationError("Replay a session once it has ended.", code="not_ended", status_code=409)
    if not focus_group.runs.exists() or not guide_sections(focus_group):
        raise ApplicationError(
            "Only a session that ran in autonomous mode can be replayed exactly.", code="no_run", status_code=409
        )
    plan = replay_check(focus_group)
    replay_refusal(plan, what="session", charged_like="a run", allow_live=allow_live)
    with transaction.atomic():
        copy = session_copy(focus_group=focus_group, title=focus_group.title, alias=focus_group.model_alias)
        replay_prepare(original_scope=session_scope(focus_group), scope=session_scope(copy), allow_live=allow_live)
        run_start(focus_group=copy, charge=allow_live)
    return copy
