"""The gateway against the project's fake OpenAI-compatible server, through the
real openai SDK: every request is exactly one UsageEvent whose tokens equal
what the server reported and whose cost is the seeded price × tokens, and
every fault ends in the documented behaviour."""

import json
import logging
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from cohorta.errors import QuotaExceeded
from llm import errors
from llm.gateway import DeltaBatcher, complete
from tests.fakes.openai_server import count_prompt_tokens
from tests.integration.helpers import wait_until
from usage.models import UsageEvent, UsageSource, UsageStatus

pytestmark = pytest.mark.django_db

PRICE_FILE = Path(__file__).resolve().parents[2] / "usage" / "pricing" / "model_prices.json"
SCHEMA = {
    "type": "object",
    "properties": {
        "themes": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "sentiment": {"type": "string", "enum": ["positive", "mixed", "negative"]},
                },
                "required": ["title", "sentiment"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["themes"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "You are Priya, 34, a nurse in Leeds who cooks on weeknights."},
    {"role": "user", "content": "What would make you switch to a new meal-kit service?"},
]


@pytest.fixture
def llm(fake_llm, settings):
    """The fake LLM with tighter timeouts, so fault tests stay quick."""
    settings.LLM_READ_TIMEOUT = 2.0
    settings.LLM_DEADLINE_SECONDS = 10.0
    return fake_llm


def _expected_cost(model: str, usage: dict) -> Decimal:
    entry = next(p for p in json.loads(PRICE_FILE.read_text())["prices"] if p["model"] == model)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return (
        Decimal(usage["prompt_tokens"] - cached) * Decimal(entry["input_per_1m"])
        + Decimal(cached) * Decimal(entry["cached_input_per_1m"])
        + Decimal(usage["completion_tokens"]) * Decimal(entry["output_per_1m"])
    ) / Decimal(1_000_000)


def watch(delta: str) -> None:
    """Someone watches the answer arrive: the call streams."""


def _events():
    return list(UsageEvent.objects.order_by("id"))


def test_a_call_is_one_event_with_the_reported_tokens_and_the_seeded_cost(llm, owner):
    llm.cached_tokens = 7
    llm.reasoning_tokens = 5
    deltas = []
    result = complete(
        feature="persona_response",
        messages=MESSAGES,
        user=owner,
        stream_to=deltas.append,
        persona_id=12,
        focus_group_id=3,
    )
    [event] = _events()
    [response] = llm.responses
    usage = response.usage
    assert "".join(deltas) == result.text == response.content
    assert (event.input_tokens, event.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert event.cached_input_tokens == 7 and event.reasoning_tokens == 5
    assert event.usage_source == UsageSource.REPORTED and event.status == UsageStatus.OK
    assert event.cost_usd == _expected_cost("gpt-5.4", usage).quantize(Decimal("0.00000001"))
    assert result.cost_usd == event.cost_usd
    assert (event.user, event.persona_id, event.focus_group_id) == (owner, 12, 3)
    assert event.model == "gpt-5.4" and event.model_alias == "main" and not event.simulated
    # The request was streamed with usage requested, as the gateway promises.
    body = llm.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_time_to_first_token_and_latency_are_measured(llm, owner):
    llm.ttft = 0.25
    llm.tokens_per_second = 400
    complete(feature="summary", messages=MESSAGES, user=owner, stream_to=watch)
    [event] = _events()
    assert event.ttft_ms >= 200 and event.latency_ms >= event.ttft_ms
    assert event.model == "gpt-5.4-mini"


def test_structured_output_is_requested_strict_and_validated(llm, owner):
    result = complete(feature="key_themes", messages=MESSAGES, schema=SCHEMA, schema_name="themes", user=owner)
    assert 2 <= len(result.data["themes"]) <= 4
    response_format = llm.requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True and response_format["json_schema"]["name"] == "themes"


def test_one_429_is_retried_after_retry_after(llm, owner):
    llm.add_fault("rate_limit", retry_after=0.3)
    result = complete(feature="summary", messages=MESSAGES, user=owner)
    # On the fake's clock (the retry cannot arrive sooner than the wait; a timed wait may wake a hair early).
    first, retry = (r.received_monotonic for r in llm.requests)
    assert retry - first >= 0.3 - 0.005
    limited, ok = _events()
    assert (limited.status, limited.error_class, limited.input_tokens) == ("error", "ProviderRateLimited", 0)
    assert ok.status == "ok" and ok.attempt == 2 and result.attempts == 2
    assert len(llm.requests) == 2


def test_a_429_storm_gives_up_after_two_retries(llm, owner):
    llm.add_fault("rate_limit", times=10, retry_after=0.01)
    with pytest.raises(errors.LLMRateLimited) as info:
        complete(feature="summary", messages=MESSAGES, user=owner)
    assert info.value.status_code == 503 and "busy" in info.value.message
    assert len(llm.requests) == 3 and len(_events()) == 3
    assert all(event.status == "error" for event in _events())


def test_retry_after_beyond_the_deadline_is_not_waited_for(llm, owner):
    llm.add_fault("rate_limit", retry_after=30)
    retries = []
    with pytest.raises(errors.LLMRateLimited):
        complete(
            feature="summary", messages=MESSAGES, user=owner, deadline_seconds=2, on_retry=lambda: retries.append(1)
        )
    assert retries == [] and len(llm.requests) == 1  # no retry was scheduled, so there was no wait before it


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(llm, owner, status):
    llm.add_fault("server_error", status=status)
    assert complete(feature="summary", messages=MESSAGES, user=owner).text
    assert [e.status for e in _events()] == ["error", "ok"]


def test_a_hanging_stream_times_out_within_the_deadline(llm, owner, settings):
    settings.LLM_READ_TIMEOUT = 0.4
    llm.add_fault("hang", times=5, seconds=5)
    with pytest.raises(errors.LLMTimeout):
        complete(feature="summary", messages=MESSAGES, user=owner, deadline_seconds=4, stream_to=watch)
    # Each attempt was ended by our read timeout: the fake saw us hang up while its 5 s hang still ran.
    wait_until(lambda: all(r.client_disconnected for r in llm.responses), 10, "the fake to see each hang-up")
    events = _events()
    assert len(events) == 3 and {e.error_class for e in events} == {"ProviderTimeout"}
    # The prompt may have been processed: its tokens are estimated, never a silent zero.
    assert all(e.usage_source == UsageSource.ESTIMATED and e.input_tokens > 0 for e in events)


@pytest.mark.parametrize(
    ("fault", "options", "error_class"),
    [
        ("rate_limit", {"retry_after": 0.01}, "ProviderRateLimited"),
        ("server_error", {"status": 500}, "ProviderServerError"),
    ],
)
def test_an_error_that_returned_no_completion_is_recorded_as_no_usage(llm, owner, fault, options, error_class):
    llm.add_fault(fault, **options)
    complete(feature="summary", messages=MESSAGES, user=owner)
    failed, ok = _events()
    assert (failed.status, failed.error_class, failed.usage_source) == ("error", error_class, UsageSource.NONE)
    assert failed.get_usage_source_display().startswith("No usage")
    assert (failed.input_tokens, failed.cached_input_tokens, failed.output_tokens, failed.reasoning_tokens) == (
        0,
        0,
        0,
        0,
    )
    assert failed.cost_usd == 0 and not failed.price_missing
    assert ok.usage_source == UsageSource.REPORTED and ok.cost_usd > 0


def test_no_usage_costs_nothing_even_for_a_model_without_a_price(llm, owner, settings):
    settings.LLM_MODELS = {**settings.LLM_MODELS, "mini": "brand-new-model"}
    llm.add_fault("rate_limit", retry_after=0.01)
    complete(feature="summary", messages=MESSAGES, user=owner)
    failed, ok = _events()
    assert failed.usage_source == UsageSource.NONE and failed.cost_usd == 0 and not failed.price_missing
    assert ok.price_missing and ok.cost_usd is None


def test_a_timeout_is_metered_as_if_the_prompt_was_billed(llm, owner, settings):
    """The README's policy: the provider may have read (and billed) the prompt before we gave up."""
    settings.LLM_READ_TIMEOUT = 0.3
    llm.add_fault("hang", seconds=5)
    complete(feature="summary", messages=MESSAGES, user=owner, stream_to=watch)
    timed_out, ok = _events()
    assert (timed_out.status, timed_out.error_class) == ("error", "ProviderTimeout")
    assert timed_out.usage_source == UsageSource.ESTIMATED
    assert timed_out.input_tokens == count_prompt_tokens(MESSAGES) and timed_out.output_tokens == 0
    assert timed_out.cost_usd > 0
    assert ok.usage_source == UsageSource.REPORTED


@pytest.mark.parametrize("watched", [True, False], ids=["streamed", "plain"])
def test_the_deadline_bounds_the_whole_call(llm, owner, settings, watched):
    settings.LLM_READ_TIMEOUT = 60  # longer than the hang: only the deadline can end an attempt before the fake does
    llm.add_fault("hang", times=5, seconds=20)
    with pytest.raises(errors.LLMTimeout):
        complete(
            feature="summary", messages=MESSAGES, user=owner, deadline_seconds=1, stream_to=watch if watched else None
        )
    assert [r.fault for r in llm.responses] == ["hang"]
    wait_until(lambda: llm.responses[0].client_disconnected, 10, "the fake to see the call give up")
    [event] = _events()
    assert (event.error_class, event.usage_source) == ("ProviderTimeout", UsageSource.ESTIMATED)


def test_a_plain_answer_is_not_cut_short_by_the_stream_read_timeout(llm, owner, settings):
    """A plain request's first byte comes only when the whole answer is written: the read timeout that tells a
    hung stream (silence between chunks) would end any long answer, so only the deadline bounds it."""
    settings.LLM_READ_TIMEOUT = 0.3
    llm.ttft = 1.0  # the whole answer takes longer than a stream may stay silent
    result = complete(feature="summary", messages=MESSAGES, user=owner, deadline_seconds=30)
    assert result.text
    [event] = _events()
    assert event.latency_ms >= 1000
    # When its first token came is not known: only streams report it.
    assert (event.status, event.streamed, event.ttft_ms) == ("ok", False, None)
    assert "stream" not in llm.requests[-1].body


@pytest.mark.parametrize("watched", [True, False], ids=["streamed", "plain"])
@pytest.mark.parametrize("fault", ["malformed_json", "stream_cut"])
def test_broken_responses_are_retried_and_metered_as_estimates(llm, owner, fault, watched):
    llm.add_fault(fault)
    result = complete(feature="summary", messages=MESSAGES, user=owner, stream_to=watch if watched else None)
    broken, ok = _events()
    assert broken.status == "error" and broken.usage_source == UsageSource.ESTIMATED and broken.input_tokens > 0
    assert broken.streamed is watched and ok.streamed is watched
    assert ok.status == "ok" and result.text == llm.responses[-1].content


def test_missing_usage_is_estimated_not_zero(llm, owner, caplog):
    llm.add_fault("no_usage")
    with caplog.at_level(logging.WARNING):
        result = complete(feature="summary", messages=MESSAGES, user=owner)
    [event] = _events()
    assert event.usage_source == UsageSource.ESTIMATED and event.status == "ok"
    assert event.input_tokens > 0 and event.output_tokens > 0 and event.cost_usd > 0
    # The offline count agrees with the provider's own counting rule.
    from tests.fakes.openai_server import count_prompt_tokens, count_tokens

    assert event.input_tokens == count_prompt_tokens(MESSAGES)
    assert event.output_tokens == count_tokens(result.text)
    assert "tokens estimated offline" in caplog.text


def test_invalid_structured_output_is_retried_once(llm, owner):
    llm.add_fault("invalid_output")
    result = complete(feature="key_themes", messages=MESSAGES, schema=SCHEMA, user=owner)
    assert result.data["themes"]
    invalid, ok = _events()
    assert invalid.status == "error" and invalid.error_class.startswith("InvalidOutput")
    assert invalid.usage_source == UsageSource.REPORTED and invalid.cost_usd > 0  # it was billed
    assert ok.status == "ok"


@pytest.mark.parametrize("fault", ["invalid_output", "garbage_output"])
def test_output_invalid_twice_is_a_typed_error(llm, owner, fault):
    llm.add_fault(fault, times=2)
    with pytest.raises(errors.LLMInvalidOutput):
        complete(feature="key_themes", messages=MESSAGES, schema=SCHEMA, user=owner)
    assert len(llm.requests) == 2 and [e.status for e in _events()] == ["error", "error"]


def test_output_cut_at_the_token_limit_is_never_repaired_or_retried(llm, owner):
    llm.add_fault("truncated")
    with pytest.raises(errors.LLMTruncated):
        complete(feature="key_themes", messages=MESSAGES, schema=SCHEMA, user=owner)
    [event] = _events()
    assert len(llm.requests) == 1 and event.status == "error" and event.error_class == "Truncated"
    assert event.output_tokens == llm.responses[-1].usage["completion_tokens"]


def test_provider_down_is_llm_unavailable(llm, owner, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"
    with pytest.raises(errors.LLMUnavailable):
        complete(feature="summary", messages=MESSAGES, user=owner)
    assert len(_events()) == 3 and all(e.error_class == "ProviderUnavailable" for e in _events())
    assert all(e.usage_source == UsageSource.NONE and e.input_tokens == 0 and e.cost_usd == 0 for e in _events())


def test_a_model_without_a_price_still_answers(llm, owner, settings):
    settings.LLM_MODELS = {**settings.LLM_MODELS, "mini": "brand-new-model"}
    assert complete(feature="summary", messages=MESSAGES, user=owner).text
    [event] = _events()
    assert event.price_missing and event.cost_usd is None and event.model == "brand-new-model"


def test_quota_is_checked_before_any_request(llm, owner):
    owner.monthly_quota_usd = Decimal("0")
    owner.save()
    with pytest.raises(QuotaExceeded):
        complete(feature="summary", messages=MESSAGES, user=owner)
    assert llm.requests == [] and _events() == []


def test_secrets_never_reach_errors_or_logs(llm, owner, settings, caplog):
    canary = "sk-canary-1234567890abcdefSECRET"
    settings.OPENAI_API_KEY = canary  # the fake server expects "test-key": it answers 401
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.LLMConfigurationError) as info:
        complete(feature="summary", messages=MESSAGES, user=owner)
    assert canary not in str(info.value) and canary not in info.value.message
    assert canary not in caplog.text
    assert len(llm.requests) == 1  # a rejected key is not retried
    assert _events()[0].error_class == "ProviderRejected"


def test_streamed_text_goes_out_at_once_then_a_few_tokens_at_a_time(llm, owner, settings):
    settings.LLM_STREAM_FLUSH_SECONDS = 0.1
    llm.tokens_per_second, llm.completion_tokens = 100, 40  # a token every 10 ms for 0.4 s
    texts: list[str] = []
    result = complete(feature="persona_response", messages=MESSAGES, user=owner, stream_to=texts.append)
    assert "".join(texts) == result.text  # all of it, in order, nothing twice
    # Batched, yet still streaming (the cadence itself, on a clock of its own, is the next test's).
    assert 1 < len(texts) < len(llm.responses[-1].content_sent_at)
    assert len(texts[0]) < len(result.text) // 4  # the first piece did not wait for company


def test_the_batcher_sends_the_first_piece_at_once_then_at_most_once_per_interval(monkeypatch):
    now = [0]
    monkeypatch.setattr("llm.gateway.time", SimpleNamespace(monotonic=lambda: now[0]))
    sent: list[tuple[int, str]] = []
    batcher = DeltaBatcher(lambda text: sent.append((now[0], text)), interval=100)
    for i in range(40):  # a token every 10 ticks
        now[0] = 10 * i
        batcher(f"t{i} ")
    now[0] = 395
    batcher.flush()  # the end of the stream
    assert "".join(text for _, text in sent) == "".join(f"t{i} " for i in range(40))
    assert sent[0] == (0, "t0 ")
    assert [at for at, _ in sent] == [0, 100, 200, 300, 395]


def test_a_retried_stream_sends_its_pending_text_before_the_reset(llm, owner, settings):
    settings.LLM_STREAM_FLUSH_SECONDS = 10  # nothing would go out between the first piece and the end
    llm.add_fault("stream_cut", after_tokens=6)
    events: list[str] = []
    result = complete(
        feature="persona_response",
        messages=MESSAGES,
        user=owner,
        stream_to=lambda text: events.append(text),
        on_retry=lambda: events.append("<reset>"),
    )
    reset = events.index("<reset>")
    cut = "".join(events[:reset])
    assert len(events[:reset]) == 2 and cut and result.text.startswith(cut)  # first piece, then the flush
    assert "".join(events[reset + 1 :]) == result.text
