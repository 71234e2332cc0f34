"""Autonomous mode through a provider outage: the run backs off, pauses, refunds a run that produced too
little, asks the provider a bounded number of times, and continues when resumed after the provider is back.

Every test drives the real gateway and ``openai`` SDK against the fake provider (``fake_llm``), which
fails or hangs on every call; the requests it received are the count of provider calls."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from rest_framework.test import APIClient

from billing.models import CreditTransaction
from billing.selectors import credits_balance, ledger_is_consistent
from cohorta.core.models import get_app_settings
from cohorta.jobs.models import Job
from focusgroups import conversation
from focusgroups.autonomous import runs as autonomous
from focusgroups.autonomous import turns as autonomous_turns
from focusgroups.discussion import services as discussion
from focusgroups.models import AutonomousRun, Message, MessageRole, RunEndReason, RunStatus
from focusgroups.report import analysis
from tests.focusgroups.test_autonomous import longer, make_session, sequences

pytestmark = pytest.mark.django_db(transaction=True)

ALWAYS = 10_000  # a fault queued for more requests than any test makes: every call fails


def app_settings(**values):
    row = get_app_settings()
    for name, value in values.items():
        setattr(row, name, value)
    row.save()


def calls_per_failed_turn() -> int:
    """One call and the gateway's retries of it: a step whose call the provider did not answer makes no
    other call (a decision not answered is followed by no answer call)."""
    return 1 + settings.LLM_MAX_RETRIES


# The opening question goes round the table of three at once: a first attempt in an outage makes three answer
# calls (each with its retries); the attempts after a failure ask one person.
ROUND = 3


def refunds(run) -> list[CreditTransaction]:
    return list(CreditTransaction.objects.filter(idempotency_key=f"session-run-refund:{run.pk}"))


def fill_past_the_summary_window(session) -> None:
    """Enough earlier talk (no participant answers) that every saved turn would ask for a summary."""
    count = conversation.WINDOW_MESSAGES + conversation.SUMMARY_EVERY + 2
    with transaction.atomic():
        first = conversation.reserve_sequences(session.pk, count)
        Message.objects.bulk_create(
            Message(focus_group=session, sequence=first + i, role=MessageRole.RESEARCHER, content=f"Note {i}")
            for i in range(count)
        )


def assert_paused_for_the_provider(run, session, *, failed: int) -> None:
    run.refresh_from_db()
    session.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.end_reason == RunEndReason.PROVIDER_UNAVAILABLE
    assert run.turns_done == 0 and run.failed_turns == failed and session.status == "paused"
    # Each failed turn was for someone else: the rotation moved on instead of naming one persona again.
    assert sorted(run.missed_turns.values()) == [1] * failed
    assert not Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).exists()
    note = Message.objects.get(focus_group=session, role=MessageRole.SYSTEM)
    assert note.content.startswith(f"Autonomous mode paused: the AI provider did not answer {failed} turns in a row")


def test_every_call_failing_pauses_the_run_after_a_bounded_number_of_calls_and_refunds_it_once(
    funded, turns, fake_llm, client
):
    session = make_session(funded)
    fill_past_the_summary_window(session)
    fake_llm.add_fault("server_error", times=ALWAYS)
    run = autonomous.run_start(focus_group=session)
    assert credits_balance(user=funded) == 60

    outcomes = turns()
    assert outcomes == ["retrying", "retrying", "paused"]
    assert turns.countdowns == [10, 30]  # each failed turn waits longer before the next attempt
    assert turns.queue == []  # paused: no next attempt is queued
    assert_paused_for_the_provider(run, session, failed=3)
    # 3 failed attempts: the opening round (three answer calls with their retries), then one person at a time;
    # no summary call although the summary was due: the provider was asked 15 times in all.
    assert len(fake_llm.requests) == (ROUND + 2) * calls_per_failed_turn() == 15
    assert all("taking part in a market-research focus group" in str(r.body) for r in fake_llm.requests)

    # No answers: the run's 40 credits come back, once, through the ledger.
    (refund,) = refunds(run)
    assert refund.kind == "refund" and refund.delta == 40 and refund.refund_of_id == run.credit_transaction_id
    assert credits_balance(user=funded) == 100 and ledger_is_consistent(user=funded)
    run.refresh_from_db()
    assert run.refund_transaction_id == refund.pk
    autonomous.run_refund_if_short(run=AutonomousRun.objects.get(pk=run.pk))
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100

    # The session page says what happened and offers Resume; so does the API.
    client.force_login(funded)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert "Paused: the AI provider is not answering (3 failed turns in a row)" in page
    assert "The run&#x27;s 40 credits were refunded: it had 0 answers." in page
    assert 'btn-outline-primary" data-autopilot="resume"' in page  # shown, not d-none
    api = APIClient()
    api.force_authenticate(funded)
    state = api.get(f"/api/v1/focus-groups/{session.pk}/autonomous/").json()
    assert state["status"] == "paused" and state["end_reason"] == "provider_unavailable"
    assert state["end_reason_label"] == "The AI provider is not answering" and state["refunded_credits"] == 40

    # Giving up: ending the session starts no analysis of a session with nothing in it, and refunds nothing more.
    discussion.focus_group_set_status(focus_group=session, status="ended")
    assert not Job.objects.filter(kind=analysis.JOB_KIND).exists()
    response = api.post(f"/api/v1/focus-groups/{session.pk}/analysis/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_little_transcript"
    assert "at least 2 answers" in response.json()["error"]["message"]
    report = client.get(f"/focus-groups/{session.pk}/report/").content.decode()
    assert "This session ended with too little to analyse, so no analysis was started" in report
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100 and ledger_is_consistent(user=funded)
    assert len(fake_llm.requests) == 15


def test_every_call_hanging_pauses_the_run_and_refunds_it_once(funded, turns, fake_llm, settings):
    settings.LLM_READ_TIMEOUT = 0.3  # each attempt gives up on the hanging provider after 0.3 s
    app_settings(autonomous_failed_turns_to_pause=2)  # set by an operator in the admin
    session = make_session(funded)
    fake_llm.add_fault("hang", times=ALWAYS, seconds=30)
    run = autonomous.run_start(focus_group=session)

    assert turns() == ["retrying", "paused"]
    assert turns.countdowns == [10]
    assert_paused_for_the_provider(run, session, failed=2)
    assert len(fake_llm.requests) == (ROUND + 1) * calls_per_failed_turn()
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100 and ledger_is_consistent(user=funded)
    assert not Job.objects.filter(kind=analysis.JOB_KIND).exists()


def test_the_decision_gives_up_on_a_hanging_provider_at_its_own_shorter_deadline(funded, turns, fake_llm, settings):
    settings.LLM_READ_TIMEOUT = 0.3
    settings.LLM_DEADLINE_SECONDS = 100  # the whole-call limit of other calls: three attempts would fit
    settings.LLM_DECISION_DEADLINE_SECONDS = 0.5  # one attempt of 0.3 s leaves no room for a retry
    app_settings(autonomous_failed_turns_to_pause=2)
    session = longer(make_session(funded))
    run = autonomous.run_start(focus_group=session)
    assert turns(limit=1) == ["saved"]  # the opening round, before the provider hangs
    before = len(fake_llm.requests)
    fake_llm.add_fault("hang", times=ALWAYS, seconds=30)

    assert turns() == ["retrying", "paused"]
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.end_reason == RunEndReason.PROVIDER_UNAVAILABLE
    assert run.failed_turns == 2 and sorted(run.missed_turns.values()) == [1, 1]
    # One decision request per failed attempt, no retries, no answer calls.
    hung = fake_llm.requests[before:]
    assert len(hung) == 2 and all(r.body.get("response_format") for r in hung)


def test_a_turn_waiting_on_a_hanging_provider_keeps_its_heartbeat(funded, turns, fake_llm, settings, monkeypatch):
    """A call to a hanging provider can take minutes (retries up to the gateway's deadline): the turn keeps
    beating meanwhile, or the reaper would take the live worker's run for dead and interrupt it."""
    settings.LLM_READ_TIMEOUT = 0.5
    monkeypatch.setattr(autonomous_turns, "BEAT_SECONDS", 0.05)
    app_settings(autonomous_failed_turns_to_pause=1)
    session = make_session(funded)
    fake_llm.add_fault("hang", times=ALWAYS, seconds=30)
    run = autonomous.run_start(focus_group=session)
    beats, done = set(), threading.Event()

    def watch():
        try:
            while not done.is_set():
                row = AutonomousRun.objects.filter(pk=run.pk).values_list("claimed_turn", "heartbeat_at").get()
                if row[0] == 0:  # the turn is claimed and waiting on the provider
                    beats.add(row[1])
                time.sleep(0.02)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert turns() == ["paused"]
    finally:
        done.set()
        watcher.join()
    assert len(beats) >= 3, beats  # the claim's own stamp, then beats while the calls hung


def test_resume_after_the_provider_recovers_continues_the_run(funded, turns, fake_llm):
    session = make_session(funded)
    # Three failed attempts (the opening round, then one person twice), then it is back.
    fake_llm.add_fault("server_error", times=(ROUND + 2) * calls_per_failed_turn())
    run = autonomous.run_start(focus_group=session)
    assert turns() == ["retrying", "retrying", "paused"]
    assert fake_llm.pending_faults == []
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED and len(refunds(run)) == 1

    autonomous.run_resume(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.end_reason == "" and run.failed_turns == 0
    outcomes = turns()
    assert "saved" in outcomes and "retrying" not in outcomes
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.end_reason in (RunEndReason.GUIDE_DONE, RunEndReason.TURN_BUDGET)
    assert autonomous.run_answers(run) >= 3
    seqs = sequences(session)
    assert seqs == list(range(1, len(seqs) + 1))
    # Refunded once when it paused with nothing to show; resuming it cost nothing more.
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100 and ledger_is_consistent(user=funded)
    assert CreditTransaction.objects.filter(user=funded, kind="spend").count() == 1


def test_a_run_that_ends_short_of_the_minimum_is_refunded_once(funded, turns):
    app_settings(autonomous_refund_min_answers=50)  # more answers than the guide's 6 turns can give
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.end_reason in (RunEndReason.GUIDE_DONE, RunEndReason.TURN_BUDGET)
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100
    autonomous.run_end(run=run, reason=RunEndReason.GUIDE_DONE)  # a late duplicate end
    assert len(refunds(run)) == 1 and credits_balance(user=funded) == 100 and ledger_is_consistent(user=funded)
    assert "The run's 40 credits were refunded" in autonomous.run_payload(run)["notice"]


def test_a_run_with_enough_answers_or_ended_by_the_researcher_is_not_refunded(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and autonomous.run_answers(run) >= 3 and refunds(run) == []

    short = make_session(funded)
    stopped = autonomous.run_start(focus_group=short)
    turns(limit=1)
    discussion.focus_group_set_status(focus_group=short, status="ended")
    stopped.refresh_from_db()
    assert stopped.end_reason == RunEndReason.STOPPED and refunds(stopped) == []
    assert credits_balance(user=funded) == 20 and ledger_is_consistent(user=funded)


def test_stopping_while_a_failed_turn_waits_pauses_at_once(funded, turns, fake_llm):
    session = make_session(funded)
    fake_llm.add_fault("server_error", times=ALWAYS)
    run = autonomous.run_start(focus_group=session)
    assert turns(limit=1) == ["retrying"]
    autonomous.run_stop(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.end_reason == ""
    assert turns() == ["not-claimed"]  # the delayed attempt finds a paused run
    assert len(fake_llm.requests) == ROUND * calls_per_failed_turn()


def test_the_billing_page_states_the_refund_rule(funded, client):
    client.force_login(funded)
    page = client.get("/billing/").content.decode()
    assert "An autonomous run that stops with fewer than 3 answers from participants" in page
    assert "is refunded in full, once." in page
