"""LLM faults injected at the fake provider, through the gateway and through the real flows.

Gateway (in the test process, one scenario per fault, each against a fresh request log): a 429 storm
honouring Retry-After, a Retry-After longer than the deadline, 5xx until the deadline, hangs beyond the
deadline, a stream cut mid-answer, a malformed stream, garbage and schema-invalid JSON, a length-cut
answer, a missing usage chunk. Invariant: exactly one UsageEvent per request the provider received (never
one for a request that was not sent), with the right status and error class; typed errors; no cut-off
text returned as a finished answer; the call stays inside its deadline.

Flows (a real worker and daphne): a moderated round where all six answers meet a 429 storm and then
broken streams, hangs and cut answers; two answers that fail for good (429s, then hangs past the
deadline) and are retried through the API; then an autonomous run whose decisions get garbage JSON and
whose answers get cut streams, hangs, a length cut and a 429 storm. Invariants: every answer ends saved,
once, as complete or as failed and retryable (nothing pending, nothing lost); no partial text is saved
as a complete message; one UsageEvent per provider request, error classes matching the faults; the run
is charged once and reaches its end with gap-free sequence numbers."""

import json
import time
from collections import Counter
from decimal import Decimal

import pytest

from billing.models import CreditTransaction
from billing.selectors import credits_balance, ledger_is_consistent
from cohorta.core.models import get_app_settings
from focusgroups.autonomous.turns import decision_schema
from focusgroups.models import (
    Answer,
    AnswerStatus,
    AutonomousRun,
    Message,
    MessageRole,
    MessageStatus,
    RunEndReason,
    RunStatus,
)
from llm import errors
from llm.gateway import complete
from tests.integration.helpers import wait_until
from tests.reliability.conftest import chat_responses, closing_turns, guide, make_session
from usage.models import UsageEvent, UsageSource, UsageStatus

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

QUESTION = [{"role": "user", "content": "What would make you try a meal kit? Answer in two sentences."}]
SCHEMA = decision_schema(["Priya Shah", "Tom Reed"])


def _wait(predicate, timeout: float, what: str, stack=None) -> None:
    wait_until(predicate, timeout, what, stack.logs if stack else None)


def _all_hung_up_by_us(responses: list):
    return lambda: all(r.client_disconnected for r in responses)


# --- the gateway ---------------------------------------------------------------------------------

# (name, faults queued, call options, settings, expected outcome, expected requests, expected error classes)
GATEWAY_CASES = [
    ("429 storm, Retry-After honoured", [("rate_limit", 3, {"retry_after": 0.1})], {}, {},
     errors.LLMRateLimited, 3, ["ProviderRateLimited"] * 3),
    ("429 then success", [("rate_limit", 2, {"retry_after": 0.1})], {}, {}, "ok", 3, ["ProviderRateLimited"] * 2),
    ("Retry-After beyond the deadline: no retry", [("rate_limit", 1, {"retry_after": 60})], {}, {},
     errors.LLMRateLimited, 1, ["ProviderRateLimited"]),
    ("5xx until the deadline cuts the backoff short", [("server_error", 3, {})], {"deadline_seconds": 1.4}, {},
     errors.LLMUnavailable, None, None),
    ("hang beyond the deadline", [("hang", 3, {"seconds": 30})], {"deadline_seconds": 2.5},
     {"LLM_READ_TIMEOUT": 60}, errors.LLMTimeout, None, None),
    ("stream cut mid-answer, then a full answer", [("stream_cut", 1, {})], {}, {}, "ok", 2, ["ProviderStreamCut"]),
    ("malformed stream, then a full answer", [("malformed_json", 1, {})], {}, {}, "ok", 2, ["ProviderMalformed"]),
    ("garbage JSON twice", [("garbage_output", 2, {})], {"schema": SCHEMA}, {}, errors.LLMInvalidOutput, 2,
     ["InvalidOutput:JSONDecodeError"] * 2),
    ("schema-invalid JSON, then valid", [("invalid_output", 1, {})], {"schema": SCHEMA}, {}, "ok", 2,
     ["InvalidOutput:ValidationError"]),
    ("structured answer cut at the length limit", [("truncated", 1, {})], {"schema": SCHEMA}, {},
     errors.LLMTruncated, 1, ["Truncated"]),
    ("plain answer cut at the length limit", [("truncated", 1, {})], {"require_complete": True}, {},
     errors.LLMTruncated, 1, ["Truncated"]),
    ("no usage reported", [("no_usage", 1, {})], {}, {}, "ok", 1, []),
]  # fmt: skip


def test_gateway_meters_every_request_once_under_every_fault(researcher, priced, llm, settings):
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = llm.base_url
    settings.LLM_SIMULATED = False
    settings.LLM_DEADLINE_SECONDS = 10.0
    user = researcher.user
    for name, faults, options, overrides, outcome, n_requests, error_classes in GATEWAY_CASES:
        settings.LLM_READ_TIMEOUT = overrides.get("LLM_READ_TIMEOUT", 5.0)
        llm.reset()
        for kind, times, fault_options in faults:
            llm.add_fault(kind, times=times, **fault_options)
        first_event = _last_event_id()
        streamed: list[str] = []
        options = dict(options)
        schema = options.pop("schema", None)
        try:
            result = complete(
                feature="conversation_decision" if schema else "persona_response",
                messages=QUESTION,
                schema=schema,
                schema_name="moderator_decision",
                user=user,
                stream_to=streamed.append,
                **options,
            )
        except errors.LLMError as exc:
            result = exc
        requests = [r for r in llm.requests if r.path == "/v1/chat/completions"]
        events = list(UsageEvent.objects.filter(id__gt=first_event).order_by("id"))
        context = (name, result, len(requests), [(e.status, e.error_class) for e in events])

        # One event per request received: never a request without one, never one without a request.
        assert len(events) == len(requests), context
        if n_requests is not None:
            assert len(requests) == n_requests, context
        if outcome == "ok":
            assert not isinstance(result, Exception), context
            # The answer is the provider's whole, finished answer: no partial stream kept.
            full = [r for r in chat_responses(llm) if r.finish_reason == "stop"]
            assert full and result.text == full[-1].content and result.finish_reason == "stop", context
            assert events[-1].status == UsageStatus.OK, context
        else:
            assert isinstance(result, outcome), context
            assert all(e.status == UsageStatus.ERROR for e in events), context
        failed = [e.error_class for e in events if e.status == UsageStatus.ERROR]
        if error_classes is not None:
            assert failed == error_classes, context
        # Successful requests are metered with what the provider reported (or an estimate, flagged).
        by_id = {r.request_id: r for r in chat_responses(llm)}
        for event in events:
            if event.status == UsageStatus.OK:
                reported = by_id[event.request_id].usage
                if reported is None:
                    assert event.usage_source == UsageSource.ESTIMATED and event.input_tokens > 0, context
                else:
                    assert (event.input_tokens, event.output_tokens) == (
                        reported["prompt_tokens"],
                        reported["completion_tokens"],
                    ), context
        # The call stays inside its deadline: with a read timeout longer than the hang, only the deadline can
        # have ended an attempt before the fake did, and the fake saw us hang up on each (not a clock's say-so).
        hangs = [r for r in chat_responses(llm) if r.fault == "hang"]
        _wait(_all_hung_up_by_us(hangs), 10, f"the fake to see each hang-up: {context}")
    llm.reset()


# --- the flows -------------------------------------------------------------------------------


def _complete_answers(llm) -> set[str]:
    """Every answer the fake provider finished (the only texts a complete message may hold)."""
    return {(r.content or "").strip() for r in chat_responses(llm) if r.finish_reason == "stop"}


def _answers_settled(session) -> bool:
    return not Answer.objects.filter(
        focus_group=session, status__in=[AnswerStatus.PENDING, AnswerStatus.STREAMING]
    ).exists()


def test_faults_during_a_moderated_round_and_an_autonomous_run(researcher, priced, llm, make_stack):
    user = researcher.user
    user.monthly_quota_usd = Decimal("1000")
    user.save(update_fields=["monthly_quota_usd"])
    app = get_app_settings()
    app.autonomous_retry_seconds = 1  # a failed autonomous turn is tried again after 1 s, then 3 s
    app.save()
    stack = make_stack(llm_base_url=llm.base_url, LLM_READ_TIMEOUT="1", LLM_DEADLINE_SECONDS="8")
    stack.start_worker(concurrency=8)
    stack.start_web()
    session = make_session(user, people=6)
    messages_url = f"/api/v1/focus-groups/{session.pk}/messages/"

    # A round to all six: every first attempt meets a 429 storm, the retries broken streams and worse.
    expected = _queue(
        llm,
        [
            ("rate_limit", 6, {"retry_after": 0.3}),
            ("stream_cut", 2, {}),
            ("malformed_json", 1, {}),
            ("truncated", 1, {}),
            ("hang", 1, {"seconds": 30}),
            ("no_usage", 1, {}),
        ],
    )
    status, body = stack.api("POST", messages_url, researcher.token, {"content": "What would make you try FreshBox?"})
    assert status == 202 and len(body["answer_ids"]) == 6, body
    _wait(lambda: _answers_settled(session), 30, "the round", stack)
    assert llm.pending_faults == []
    # Two answers that fail for good: 429s on every attempt, then hangs on every attempt.
    expected += _queue(llm, [("rate_limit", 3, {"retry_after": 0.2})])
    status, body = stack.api("POST", messages_url, researcher.token, {"content": "@Priya what about price?"})
    assert status == 202, body
    _wait(lambda: _answers_settled(session), 30, "Priya's answer", stack)
    expected += _queue(llm, [("hang", 3, {"seconds": 30})])
    status, body = stack.api("POST", messages_url, researcher.token, {"content": "@Tom and you?"})
    assert status == 202, body
    _wait(lambda: _answers_settled(session), 30, "Tom's answer", stack)
    assert llm.pending_faults == []

    failed = list(Message.objects.filter(focus_group=session, status=MessageStatus.FAILED))
    assert {m.speaker_name for m in failed} >= {"Priya Shah", "Tom Reed"}, [(m.speaker_name, m.error) for m in failed]
    # Failed answers say why, and the researcher can retry them: each retry is answered, once.
    for message in failed:
        assert message.error and message.content == ""
        status, body = stack.api("POST", f"{messages_url}{message.pk}/retry/", researcher.token)
        assert status == 202, body
    _wait(lambda: _answers_settled(session), 30, "the retries", stack)
    for message in failed:
        message.refresh_from_db()
        assert message.status == MessageStatus.RETRIED
        assert Message.objects.filter(retry_of=message, status=MessageStatus.COMPLETE).count() == 1

    # Nothing lost, nothing twice, nothing half-written: one message per answer, complete ones whole.
    answers = list(Answer.objects.filter(focus_group=session))
    assert all(a.status in (AnswerStatus.DONE, AnswerStatus.FAILED) for a in answers)
    saved = list(Message.objects.filter(focus_group=session, role=MessageRole.PERSONA))
    assert Counter(m.answer_id for m in saved) == Counter(a.pk for a in answers)
    whole = _complete_answers(llm)
    for message in saved:
        if message.status == MessageStatus.COMPLETE:
            assert message.content in whole, f"#{message.sequence} is not a finished answer: {message.content!r}"
    sequences = sorted(m.sequence for m in Message.objects.filter(focus_group=session))
    assert sequences == list(range(1, len(sequences) + 1))
    _assert_one_event_per_request(llm, user, after_id=0, expected=expected)

    # An autonomous run through garbage decisions and broken answers. Its steps are known in advance: the
    # guide's question goes round the table (no decision), then each step is a decision and the answers it
    # asks for. Faults are aimed at the calls they are meant for (decisions, or one persona's answers), so the
    # round's parallel calls cannot take each other's.
    llm.reset()
    after_id = _last_event_id()
    run_session = make_session(user, people=3, guide_data=guide(sections=1, questions=1, turn_budget=6), title="Run")
    decisions = "moderator_decision"
    priya = "You are Priya Shah, taking part"

    def tom_addressed(body) -> bool:  # Tom's answer to a line put to him alone (not the opening round)
        text = json.dumps(body)
        return "You are Tom Reed, taking part" in text and "addressed to you" in text

    expected = _queue(llm, [
        ("stream_cut", 1, {"match": priya}),  # the opening round: Priya's answer breaks mid-stream, retried
        ("no_usage", 1, {"match": priya}),  # ...and the retry gets a full answer (tokens estimated)
        ("garbage_output", 2, {"match": decisions}),  # step 2: the decision, and its retry: round-robin (Priya)
        ("hang", 3, {"seconds": 30, "match": priya}),  # her answer hangs on every attempt: tried again later
        ("invalid_output", 2, {"match": decisions}),  # step 2 again: schema-invalid decisions: round-robin (Tom)
        ("truncated", 1, {"match": tom_addressed}),  # his answer is cut at its length limit: tried again, later
        ("no_usage", 1, {"match": decisions}),  # step 2 a third time: a valid decision (no usage: estimated)
    ])  # fmt: skip
    status, body = stack.api("POST", f"/api/v1/focus-groups/{run_session.pk}/autonomous/", researcher.token,
                             {"action": "start"})  # fmt: skip
    assert status == 202, body
    run = AutonomousRun.objects.get(focus_group=run_session)
    _wait(lambda: AutonomousRun.objects.get(pk=run.pk).status == RunStatus.ENDED, 60, "the run", stack)
    time.sleep(1.0)  # summary tasks of the last turns
    assert llm.pending_faults == []
    run.refresh_from_db()
    assert run.end_reason in (RunEndReason.TURN_BUDGET, RunEndReason.GUIDE_DONE), run.end_reason
    sequences = list(Message.objects.filter(focus_group=run_session).values_list("sequence", flat=True))
    assert sorted(sequences) == list(range(1, len(sequences) + 1))
    # The opening round kept all three answers (Priya's on the retry of her broken stream).
    opening = list(Message.objects.filter(focus_group=run_session).order_by("sequence")[:4])
    assert [m.role for m in opening] == [MessageRole.MODERATOR] + [MessageRole.PERSONA] * 3
    assert [m.speaker_name for m in opening[1:]] == ["Priya Shah", "Tom Reed", "Alex Kim"]
    # The two failed attempts at step 2 saved nothing and went to two different participants (Priya, then
    # Tom); the third attempt answered (two failures in a row are under App settings' three that pause a run).
    assert not Message.objects.filter(focus_group=run_session, role=MessageRole.SYSTEM).exists()
    names = {str(p.persona_id): p.persona.name for p in run_session.participants.select_related("persona")}
    assert {names[k]: v for k, v in run.missed_turns.items()} == {"Priya Shah": 1, "Tom Reed": 1}
    assert run.failed_turns == 0
    whole = _complete_answers(llm)
    run_answers = list(Message.objects.filter(focus_group=run_session, role=MessageRole.PERSONA))
    assert len(run_answers) + closing_turns(run_session) == run.turns_done
    for message in run_answers:
        assert message.status == MessageStatus.COMPLETE and message.content in whole, message.content
    _assert_one_event_per_request(llm, user, after_id=after_id, expected=expected)

    # Every fault was handled: no task raised.
    crashes = stack.crashes()
    assert not crashes, "\n\n".join(crashes[:5])

    # Money: the run was charged once, the moderated rounds not at all.
    spends = list(CreditTransaction.objects.filter(user=user, kind="spend"))
    assert [(s.idempotency_key, s.delta) for s in spends] == [(f"autorun:{run.pk}", -40)]
    assert credits_balance(user=user) == 60 and ledger_is_consistent(user=user)


# What the gateway records for each fault the fake provider serves (no_usage is a success, estimated).
_FAULT_CLASSES = {
    "rate_limit": "ProviderRateLimited",
    "server_error": "ProviderServerError",
    "hang": "ProviderTimeout",
    "stream_cut": "ProviderStreamCut",
    "malformed_json": "ProviderMalformed",
    "truncated": "Truncated",
    "garbage_output": "InvalidOutput:JSONDecodeError",
    "invalid_output": "InvalidOutput:ValidationError",
}


def _queue(llm, faults: list[tuple[str, int, dict]]) -> Counter:
    for kind, times, options in faults:
        llm.add_fault(kind, times=times, **options)
    return Counter({_FAULT_CLASSES[kind]: times for kind, times, _ in faults if kind in _FAULT_CLASSES})


def _assert_one_event_per_request(llm, user, *, after_id: int, expected: Counter) -> None:
    """Every request the fake received has exactly one UsageEvent; the failed ones carry the error class of
    the fault served (all queued faults were served)."""
    assert llm.pending_faults == []

    def chat_requests() -> list:
        return [r for r in llm.requests if r.path == "/v1/chat/completions"]

    # The last answers' background calls (emerging themes, the running summary) may still be on the wire when the
    # answers are settled: each gets its event when it ends. Give them time to end; a request that never gets one
    # still fails below, with the counts.
    deadline = time.monotonic() + 15
    while UsageEvent.objects.filter(user=user, id__gt=after_id).count() < len(chat_requests()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    requests = chat_requests()
    events = list(UsageEvent.objects.filter(user=user, id__gt=after_id))
    assert len(events) == len(requests), (
        f"{len(events)} events for {len(requests)} requests",
        Counter((e.feature, e.status, e.error_class) for e in events),
        Counter((r.fault, r.status) for r in chat_responses(llm)),
    )
    failed = Counter(e.error_class for e in events if e.status == UsageStatus.ERROR)
    assert failed == expected, (failed, expected)
    ok_ids = [e.request_id for e in events if e.status == UsageStatus.OK]
    assert len(ok_ids) == len(set(ok_ids)) and set(ok_ids) <= {r.request_id for r in chat_responses(llm)}


def _last_event_id() -> int:
    return UsageEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
