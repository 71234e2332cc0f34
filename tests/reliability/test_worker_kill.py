"""kill -9 the Celery worker 20 times while an autonomous session runs on it.

A real worker process (threads pool) runs the per-turn tasks against the fake LLM, slowed down so that
turns are in flight. At a random moment (every fifth kill: right between two turns) the worker gets
SIGKILL and a new one starts. The real reaper (``runs_reap``) runs with its clock two minutes on, since no
worker is alive to notice: a run that lost its turn in flight is interrupted and the researcher resumes
it through the API; a run killed between turns gets its next turn sent again and goes on by itself. The
last worker has a 1 s visibility timeout, so Redis hands it every task the dead workers had taken and
never acknowledged: each must be a no-op.

Invariants: messages are numbered 1..N with no gap or duplicate and no turn is saved twice; no task
crashed; the run was charged once; every usage event belongs to one request the fake server answered,
with the usage it reported, and every request without an event was open when a worker died; every saved
answer has its usage event; the run reaches its end."""

import json
import random
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import CreditTransaction
from billing.selectors import credits_balance, ledger_is_consistent
from focusgroups.autonomous import runs as autonomous
from focusgroups.models import AutonomousRun, FocusGroup, Message, MessageRole, RunEndReason, RunStatus
from tests.integration.helpers import wait_until
from tests.reliability.conftest import chat_responses, closing_turns, guide, make_session
from usage.models import UsageEvent, UsageStatus

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

KILLS = 20
# Each section's budget is 18 turns: 5 sections take the whole 90-turn budget (a wrap-up can only end the
# run on the guide's last question), so the run outlives the 20 kills although a round of the table spends
# three turns at once.
GUIDE = guide(sections=5, questions=6, turn_budget=18)


def _wait(predicate, timeout: float, what: str, stack=None) -> None:
    wait_until(predicate, timeout, what, stack.logs if stack else None)


def _settle(llm, quiet: float = 1.5, timeout: float = 30) -> None:
    """Wait until the fake LLM has had no new request for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(llm.requests)
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def _content_for(llm, body: dict, cache: dict[str, str]) -> str:
    """What the fake server answers to ``body`` (a pure function of the request)."""
    key = json.dumps(body, sort_keys=True)
    if key not in cache:
        cache[key] = llm._plan(body, None, {}).content
    return cache[key]


def _kill_between_turns(run_id: int, timeout: float = 8) -> None:
    """Return as soon as a turn has been saved and the next one is not claimed yet (or at the timeout)."""
    done = AutonomousRun.objects.values_list("turns_done", flat=True).get(pk=run_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        turns_done, claimed = AutonomousRun.objects.values_list("turns_done", "claimed_turn").get(pk=run_id)
        if turns_done > done and claimed is None:
            return
        time.sleep(0.002)


def test_killing_the_worker_20_times_loses_nothing_and_charges_once(researcher, priced, llm, make_stack, monkeypatch):
    rng = random.Random(20)
    llm.ttft, llm.tokens_per_second, llm.completion_tokens = 0.25, 150, 30
    session = make_session(researcher.user, people=3, guide_data=GUIDE)
    stack = make_stack(llm_base_url=llm.base_url, LLM_READ_TIMEOUT="10", LLM_DEADLINE_SECONDS="30")
    worker = stack.fork_worker()
    stack.start_web()
    api = f"/api/v1/focus-groups/{session.pk}/autonomous/"

    status, body = stack.api("POST", api, researcher.token, {"action": "start"})
    assert status == 202 and body["status"] == "running", body
    run = AutonomousRun.objects.get(focus_group=session)
    assert run.turn_budget == 90

    # The reaper runs here, in the test process: the turns it sends again must go to the real broker.
    resent: list[tuple] = []

    def send_turn(args, **options):
        resent.append(tuple(args))
        stack.send_task("focusgroups.tasks.autonomous_turn", args, queue="llm")

    monkeypatch.setattr("focusgroups.tasks.autonomous_turn.apply_async", send_turn)

    kills: list[dict] = []
    for n in range(KILLS):
        if n % 5 == 2:
            # Aim between two turns: right after a turn is saved, before the next one is claimed.
            _kill_between_turns(run.pk)
        else:
            time.sleep(rng.uniform(0.1, 1.8))  # in a decision, an answer stream, a save, or between turns
        state = AutonomousRun.objects.get(pk=run.pk)
        assert state.status == RunStatus.RUNNING, f"the run stopped before kill {n + 1}: {state.status}"
        worker.kill()
        killed_at = timezone.now()
        time.sleep(0.2)  # let Postgres see the dropped connections and roll back what was open
        state = AutonomousRun.objects.get(pk=run.pk)
        kill = {"at": time.time(), "turn": state.turns_done, "mid_turn": state.claimed_turn is not None}
        kills.append(kill)
        # Two minutes later (the reaper's promise) the run is moving again or can be resumed.
        before = len(resent)
        reaped = autonomous.runs_reap(now=killed_at + timedelta(seconds=120))
        if kill["mid_turn"]:
            # The turn in flight is lost: the run is interrupted, the researcher resumes it.
            assert reaped == 1, kill
            assert AutonomousRun.objects.get(pk=run.pk).status == RunStatus.INTERRUPTED
            assert FocusGroup.objects.get(pk=session.pk).status == "paused"
        else:
            # Killed between turns: the next turn's task was taken by the dead worker and will not come
            # back for half an hour; the reaper sent it again instead, and the run goes on by itself.
            assert reaped == 0 and resent[before:] == [(run.pk, state.turns_done)], (kill, resent)
            assert AutonomousRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

        if n < KILLS - 1:
            worker = stack.fork_worker()
        else:
            # The last worker runs the tail fast, and with a 1 s visibility timeout Redis gives it back
            # every task the dead workers had taken and never acknowledged.
            llm.ttft, llm.tokens_per_second = 0.0, 0.0
            worker = stack.fork_worker(visibility_timeout=1)
        if kill["mid_turn"]:
            status, body = stack.api("POST", api, researcher.token, {"action": "resume"})
            assert status == 202 and body["status"] == "running", body
        else:
            _wait(lambda s=state: AutonomousRun.objects.get(pk=run.pk).turns_done > s.turns_done, 30, "a turn", stack)

    _wait(lambda: AutonomousRun.objects.get(pk=run.pk).status == RunStatus.ENDED, 90, "the run to end", stack)
    _settle(llm)  # summary tasks enqueued by the last turns

    run.refresh_from_db()
    session.refresh_from_db()
    last_log = worker.log()

    # No task crashed, not even the dead workers' tasks handed to the last one.
    crashes = stack.crashes()
    assert not crashes, "\n\n".join(crashes[:5])

    # The run ended, by its budget (or the guide), and the session with it.
    assert run.end_reason in (RunEndReason.TURN_BUDGET, RunEndReason.GUIDE_DONE), run.end_reason
    assert session.status == "ended"

    # Messages: 1..N, no gap, no duplicate, and no turn saved twice.
    sequences = list(
        Message.objects.filter(focus_group=session).order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, session.last_sequence + 1))
    answers = list(Message.objects.filter(focus_group=session, role=MessageRole.PERSONA))
    # A step's answer has the id of its turn, and of its person when several answer it at once (a round).
    people = list(session.participants.values_list("persona_id", flat=True))
    turn_of = {uuid.uuid5(uuid.NAMESPACE_URL, f"cohorta-run:{run.pk}:{t}"): (t, None) for t in range(run.turn_budget)}
    for t in range(run.turn_budget):
        for person in people:
            turn_of[uuid.uuid5(uuid.NAMESPACE_URL, f"cohorta-run:{run.pk}:{t}:{person}")] = (t, person)
    turns = [turn_of[m.answer_id] for m in answers]
    assert len(turns) == len(set(turns)), "a turn was saved twice"
    assert max(t for t, _ in turns) < run.turns_done <= run.turn_budget
    notes = Message.objects.filter(focus_group=session, role=MessageRole.SYSTEM).count()
    # Every completed turn saved exactly one answer (or note), but a closing wrap-up.
    assert len(answers) + notes + closing_turns(session) == run.turns_done

    # One charge for the run, however many times it was resumed.
    spends = CreditTransaction.objects.filter(user=researcher.user, kind="spend")
    assert [(s.idempotency_key, s.delta) for s in spends] == [(f"autorun:{run.pk}", -40)]
    assert not CreditTransaction.objects.filter(user=researcher.user, kind="refund").exists()
    assert credits_balance(user=researcher.user) == 60 and ledger_is_consistent(user=researcher.user)

    # Usage. The fake server records an answer once it is complete; a stream cut by a dying worker has none. A plain
    # answer is recorded before its body goes out: one whose worker died waiting for it (the fake saw the hang-up) was
    # never delivered, and counts with the unanswered below.
    requests = [r for r in llm.requests if r.path == "/v1/chat/completions"]
    responses = [r for r in chat_responses(llm) if not (r.client_disconnected and r.completed_at is None)]
    events = list(UsageEvent.objects.filter(user=researcher.user))
    assert all(e.status == UsageStatus.OK and e.request_id for e in events), "no fault was injected"
    by_request = {r.request_id: r for r in responses}
    metered_ids = [e.request_id for e in events]
    assert len(metered_ids) == len(set(metered_ids)), "a request was metered twice"
    assert set(metered_ids) <= set(by_request), "an event for a request the provider never answered"
    for event in events:  # what was metered is what the provider reported
        usage = by_request[event.request_id].usage
        assert (event.input_tokens, event.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    kill_times = [k["at"] for k in kills]

    def near_a_kill(at: float) -> bool:
        return any(0 <= t - at <= 12 for t in kill_times)

    # Answered but not metered: the worker died between the last byte and the event.
    unmetered = [r for r in responses if r.request_id not in set(metered_ids)]
    assert all(near_a_kill(r.recorded_at) for r in unmetered), unmetered
    # Never answered: the worker died mid-stream. Matched by content (the fake answers a body the same way).
    contents: dict[str, str] = {}
    expected = Counter(_content_for(llm, r.body, contents) for r in requests)
    answered = Counter(r.content for r in responses)
    assert not answered - expected, "an answer to a request nobody sent"
    unanswered = expected - answered
    for content, count in unanswered.items():
        near = sum(1 for r in requests if _content_for(llm, r.body, contents) == content and near_a_kill(r.received_at))
        assert near >= count, "a request left unanswered although no worker died around it"
    lost = sum(unanswered.values()) + len(unmetered)
    # A kill cuts at most the calls in flight: one decision, or a round's answers (one per person).
    assert len(events) == len(requests) - lost and lost <= len(people) * len(kills)

    # Every saved answer has its usage: the persona_response event of the request that produced its text.
    metered = {e.request_id: e for e in events if e.feature == "persona_response"}
    for message in answers:
        sources = [r.request_id for r in responses if (r.content or "").strip() == message.content]
        assert any(rid in metered and metered[rid].persona_id == message.persona_id for rid in sources), (
            f"answer #{message.sequence} has no usage event"
        )

    # The tasks the dead workers had taken came back to the last worker and did nothing.
    redelivered_noops = last_log.count("'not-claimed'")
    mid_turn = sum(1 for k in kills if k["mid_turn"])
    print(
        f"\nkills={KILLS} mid-turn={mid_turn} between-turns={KILLS - mid_turn} turns={run.turns_done} "
        f"(at each kill: {[k['turn'] for k in kills]}) messages={session.last_sequence} "
        f"requests={len(requests)} answered={len(responses)} events={len(events)} "
        f"lost in killed workers={lost} redelivered no-op turns={redelivered_noops}"
    )
    assert mid_turn >= 10, "too few kills landed inside a turn to mean anything"
