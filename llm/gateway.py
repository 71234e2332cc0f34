"""The one way Cohorta calls a language model.

    result = complete(feature="persona_response", messages=[...], user=user, stream_to=send_delta)
    result = complete(feature="persona_basic", messages=[...], schema=PERSONAS_SCHEMA, user=user, job=job)
    vectors = embed(feature="survey_rating", texts=["I'd buy it", ...], user=user)

For every request it sends to the provider it writes exactly one UsageEvent
(success or failure) with tokens, cost, latency and time to first token. It
checks the user's quota first, retries 429/5xx/timeouts at most
``LLM_MAX_RETRIES`` times with backoff (honouring Retry-After) inside a total
deadline, fits structured output to its JSON schema where strict mode cannot
(text over a length limit cut at a word boundary, see llm.schemas), validates
it (one retry on invalid output; output cut at the token limit is never repaired), and raises
typed errors (llm.errors) whose messages carry no secrets. ``embed()`` does the same for
embeddings: batches of ``LLM_EMBEDDING_BATCH_SIZE`` texts, one metered request each.

Only a call with ``stream_to`` (someone watches the answer arrive) streams; any other is a plain request,
whose answer comes in one body: decisions, emerging themes, reports and personas cost the worker one
response instead of a trip through the HTTP client and SSE decoder per token.
"""

import contextlib
import contextvars
import json
import logging
import random
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

import jsonschema
from django.conf import settings
from django.db import connection
from tenacity import RetryCallState, Retrying, stop_after_attempt

from cohorta.secrets import scrub
from llm import errors
from llm.embedders import EmbeddingRequest, get_embedder
from llm.models import CacheKind, ReplayMode, RunRecord
from llm.prompts import prompts_taken
from llm.providers import OpenAIProvider, ProviderRequest, ProviderResponse, alias_provider_name, provider_config
from llm.replay import (
    Kept,
    completion_hash,
    count_lookup,
    current_run,
    discard,
    embedding_hash,
    find,
    keep,
    keep_vector,
    note_embedding_model,
    note_model,
    note_prompts,
    snapshots_for,
    used,
    vector_entries,
    vectors_unpack,
)
from llm.schemas import schema_fit, wire_schema
from llm.simulator import SimulatedProvider
from llm.tokens import count_message_tokens, count_tokens
from usage.models import UsageEvent, UsageSource, UsageStatus
from usage.quotas import quota_check
from usage.services import TokenUsage, usage_event_record

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 8.0
_COST_PLACES = Decimal(1).scaleb(-UsageEvent._meta.get_field("cost_usd").decimal_places)
MIN_ATTEMPT_SECONDS = 0.25  # a retry must have at least this long left before the deadline

_before_send: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "llm_before_send", default=None
)


@contextlib.contextmanager
def before_send(callback: Callable[[], None]) -> Iterator[None]:
    """``callback()`` just before each request of this context leaves for the provider (every attempt), once the
    call's own bookkeeping is done: a round of answers uses it to let the next answer get ready
    (focusgroups/round_helpers.py)."""
    token = _before_send.set(callback)
    try:
        yield
    finally:
        _before_send.reset(token)


@dataclass
class LLMResult:
    text: str
    data: Any
    feature: str
    model: str
    simulated: bool
    finish_reason: str | None
    tokens: TokenUsage
    cost_usd: Decimal | None
    ttft_ms: int | None
    latency_ms: int
    attempts: int
    event_ids: list[int] = field(default_factory=list)


@dataclass
class _CallContext:
    feature: str
    alias: str
    model: str
    user: Any
    job_id: Any
    focus_group_id: int | None
    persona_id: int | None
    provider: Any
    messages: list[dict]
    deadline: float
    attempts: int = 0
    event_ids: list[int] = field(default_factory=list)
    costs: dict[int, Decimal | None] = field(default_factory=dict)  # event id -> its cost, as stored


@lru_cache(maxsize=256)
def _validator_for(schema_json: str):
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # once per schema, not on every answer as jsonschema.validate() does
    return cls(schema)


def _validator(schema: dict):
    return _validator_for(json.dumps(schema, sort_keys=True))


class DeltaBatcher:
    """Passes streamed text on in order: the first piece at once, then what arrived, at most once per
    ``interval`` seconds, and the rest on ``flush()``. A token per event cost two thread hand-offs in
    the worker (the stream, then the publisher) for text a reader cannot see arrive any faster."""

    def __init__(self, sink: Callable[[str], None], interval: float) -> None:
        self.sink = sink
        self.interval = interval
        self.pending: list[str] = []
        self.last_sent: float | None = None

    def __call__(self, delta: str) -> None:
        self.pending.append(delta)
        now = time.monotonic()
        if self.last_sent is None or now - self.last_sent >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.pending:
            text, self.pending = "".join(self.pending), []
            self.last_sent = time.monotonic() if now is None else now
            self.sink(text)


def get_provider(alias: str | None = None) -> OpenAIProvider | SimulatedProvider:
    """The provider ``alias`` runs on (``settings.LLM_ALIAS_PROVIDERS``; no alias: the default provider): its
    OpenAI-compatible endpoint, or the offline simulator when no provider can be called at all, or, in
    development, when this alias's provider is not configured or has no key (production refuses to start)."""
    if settings.LLM_SIMULATED:
        return SimulatedProvider()
    config = provider_config(alias_provider_name(alias))
    if config is None or not config.usable:
        return SimulatedProvider()
    return OpenAIProvider(config)


def model_for(feature: str, alias: str | None = None) -> tuple[str, str]:
    """(alias, model) for a feature, from settings: changing a model is configuration.
    ``alias`` overrides the feature's own alias (model comparisons)."""
    try:
        default_alias = settings.LLM_FEATURES[feature]
    except KeyError:
        raise ValueError(f"Unknown LLM feature {feature!r}; add it to LLM_FEATURES") from None
    alias = alias or default_alias
    if alias not in settings.LLM_MODELS:
        raise ValueError(f"Unknown model alias {alias!r}; use one of {sorted(settings.LLM_MODELS)}")
    return alias, settings.LLM_MODELS[alias]


def complete(
    *,
    feature: str,
    messages: list[dict],
    schema: dict | None = None,
    schema_name: str = "output",
    user=None,
    job=None,
    focus_group_id: int | None = None,
    persona_id: int | None = None,
    focus_group_cap_usd: Decimal | None = None,
    stream_to: Callable[[str], None] | None = None,
    on_retry: Callable[[], None] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    deadline_seconds: float | None = None,
    alias: str | None = None,
    require_complete: bool = False,
) -> LLMResult:
    """``require_complete``: plain text that stopped at the token limit is discarded (LLMTruncated), as
    structured output always is; for answers that are saved and shown as finished.

    Inside a run (``llm.replay.llm_run``, or any call naming a focus group) a validated answer is kept for
    exact replay; in a replay the answer comes from the cache, and a miss raises ``LLMReplayMiss`` unless the
    replay may ask the provider for what is missing."""
    alias, model = model_for(feature, alias)
    run = current_run(focus_group_id)
    prompts = prompts_taken()
    ctx = _CallContext(
        feature=feature,
        alias=alias,
        model=model,
        user=user,
        job_id=getattr(job, "pk", job),
        focus_group_id=focus_group_id,
        persona_id=persona_id,
        provider=get_provider(alias),
        messages=messages,
        deadline=time.monotonic() + (deadline_seconds or settings.LLM_DEADLINE_SECONDS),
    )
    response_format = (
        {"type": "json_schema", "json_schema": {"name": schema_name, "schema": wire_schema(schema), "strict": True}}
        if schema is not None
        else None
    )
    params = {"response_format": response_format, "max_tokens": max_tokens, "temperature": temperature}
    if run is not None:
        note_prompts(run, prompts)
        if run.mode != ReplayMode.LIVE:
            replayed = _replayed(ctx, run, params, schema, require_complete, stream_to)
            if replayed is not None:
                return replayed
            if run.mode == ReplayMode.REPLAY:
                raise errors.LLMReplayMiss(
                    "This replay needs an AI answer the cache does not hold (it expired, or the prompt or model "
                    "changed), so it stopped without asking the AI provider. Replay it again allowing live "
                    "answers for what is missing."
                )
    if user is not None:
        quota_check(user=user, focus_group_id=focus_group_id, focus_group_cap_usd=focus_group_cap_usd)
    # The deadline bounds the provider's time, from here: not our own bookkeeping before the first request.
    ctx.deadline = time.monotonic() + (deadline_seconds or settings.LLM_DEADLINE_SECONDS)
    request = ProviderRequest(
        model=model,
        messages=messages,
        response_format=response_format,
        max_tokens=max_tokens,
        temperature=temperature,
        deadline=ctx.deadline,
        on_delta=DeltaBatcher(stream_to, settings.LLM_STREAM_FLUSH_SECONDS) if stream_to else None,
        seed_hint=feature,
    )

    content_retry_used = False
    while True:
        response, tokens, event_id = _call_with_retries(ctx, request, on_retry)
        if schema is None and not (require_complete and response.finish_reason == "length"):
            _keep_completion(ctx, run, params, response, tokens)
            return _result(ctx, response, tokens, event_id, data=None)
        if response.finish_reason == "length":
            _mark_failed(ctx, event_id)
            raise errors.LLMTruncated(
                "The AI's answer was cut off at its length limit, so it was discarded. Try again, or ask for less."
            )
        assert schema is not None  # without a schema the call returned or raised above
        try:
            data = structured_output(response.text, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            _mark_failed(ctx, event_id, error_class=f"InvalidOutput:{exc.__class__.__name__}")
            if not content_retry_used and time.monotonic() < ctx.deadline:
                content_retry_used = True
                logger.warning("Invalid structured output for %s from %s; retrying once", feature, model)
                if on_retry is not None:
                    on_retry()
                continue
            raise errors.LLMInvalidOutput(
                "The AI returned an answer in the wrong shape twice. Please try again."
            ) from None
        _keep_completion(ctx, run, params, response, tokens)
        return _result(ctx, response, tokens, event_id, data=data)


def _keep_completion(
    ctx: _CallContext, run: RunRecord | None, params: dict, response: ProviderResponse, tokens: TokenUsage
) -> None:
    """A validated live answer in a run: kept as the next draw of its request, the model noted."""
    if run is None:
        return
    snapshot = response.model or ctx.model
    note_model(run, alias=ctx.alias, provider=ctx.provider.name, model=ctx.model, snapshot=snapshot)
    request_hash = completion_hash(provider=ctx.provider.name, snapshot=snapshot, messages=ctx.messages, params=params)
    keep(
        run,
        request_hash,
        Kept(
            kind=CacheKind.COMPLETION,
            feature=ctx.feature,
            provider=ctx.provider.name,
            model=ctx.model,
            snapshot=snapshot,
            text=response.text,
            finish_reason=response.finish_reason or "",
            input_tokens=tokens.input_tokens,
            cached_input_tokens=tokens.cached_input_tokens,
            output_tokens=tokens.output_tokens,
            reasoning_tokens=tokens.reasoning_tokens,
        ),
    )


def _replayed(
    ctx: _CallContext, run: RunRecord, params: dict, schema: dict | None, require_complete: bool, stream_to
) -> LLMResult | None:
    """The answer the original run got for this request, or None (a miss). An entry that no longer
    validates against the schema is discarded, never replayed."""
    snapshots = snapshots_for(run, alias=ctx.alias, provider=ctx.provider.name, model=ctx.model)
    hashes = [
        completion_hash(provider=ctx.provider.name, snapshot=snapshot, messages=ctx.messages, params=params)
        for snapshot in snapshots
    ]
    found = find(run, hashes)
    if found is None:
        count_lookup(hit=False)
        return None
    request_hash, entry = found
    data = None
    if (schema is not None or require_complete) and entry.finish_reason == "length":
        discard(entry)
        count_lookup(hit=False)
        return None
    if schema is not None:
        try:
            data = structured_output(entry.text, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError):
            discard(entry)
            count_lookup(hit=False)
            return None
    used(run, request_hash, entry)
    count_lookup(hit=True)
    note_model(run, alias=ctx.alias, provider=ctx.provider.name, model=ctx.model, snapshot=entry.model_snapshot)
    if stream_to is not None:
        stream_to(entry.text)
    tokens = TokenUsage(
        input_tokens=entry.input_tokens,
        cached_input_tokens=entry.cached_input_tokens,
        output_tokens=entry.output_tokens,
        reasoning_tokens=entry.reasoning_tokens,
        source=UsageSource.REPORTED,
    )
    _record(
        ctx,
        tokens,
        status=UsageStatus.OK,
        error_class="",
        latency_s=0.0,
        ttft_s=None,
        streamed=False,
        cached=True,
        model_snapshot=entry.model_snapshot,
    )
    return LLMResult(
        text=entry.text,
        data=data,
        feature=ctx.feature,
        model=ctx.model,
        simulated=ctx.provider.simulated,
        finish_reason=entry.finish_reason or None,
        tokens=tokens,
        cost_usd=Decimal(0),
        ttft_ms=None,
        latency_ms=0,
        attempts=0,
        event_ids=list(ctx.event_ids),
    )


def structured_output(text: str, schema: dict) -> Any:
    """The model's JSON answer, fitted to ``schema`` where strict mode cannot hold the model to it (see
    ``llm.schemas.schema_fit``), then validated: ``json.JSONDecodeError`` or
    ``jsonschema.ValidationError`` when it does not parse or still does not match."""
    data = schema_fit(json.loads(text), schema)
    _validator(schema).validate(data)
    return data


def _result(ctx: _CallContext, response: ProviderResponse, tokens: TokenUsage, event_id: int, data) -> LLMResult:
    return LLMResult(
        text=response.text,
        data=data,
        feature=ctx.feature,
        model=ctx.model,
        simulated=ctx.provider.simulated,
        finish_reason=response.finish_reason,
        tokens=tokens,
        cost_usd=ctx.costs.get(event_id),
        ttft_ms=_ms(response.ttft_s),
        latency_ms=_ms(response.latency_s) or 0,
        attempts=ctx.attempts,
        event_ids=list(ctx.event_ids),
    )


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        wait = retry_after
    else:
        wait = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (state.attempt_number - 1)) + random.uniform(0, 0.25)
    return wait


def _call_with_retries(
    ctx: _CallContext, request: ProviderRequest, on_retry
) -> tuple[ProviderResponse, TokenUsage, int]:
    return _with_retries(ctx, partial(_one_call, ctx, request), on_retry, _typed_error)


def _with_retries(ctx: _CallContext, call: Callable[[], Any], on_retry, typed_error) -> Any:
    next_wait = [0.0]

    def retryable(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, errors.ProviderError) or not exc.retryable:
            return False
        # Retry only if the wait we are about to make (the backoff, or Retry-After) still leaves the next
        # attempt some time inside the deadline. Deciding with a shorter wait than the one then slept made
        # the last attempt start at the deadline: a "call" that sent nothing and failed as a timeout.
        next_wait[0] = _wait(state)
        return time.monotonic() + next_wait[0] + MIN_ATTEMPT_SECONDS < ctx.deadline

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None  # called only after an attempt failed
        logger.info(
            "Retrying %s after %s (attempt %s)",
            ctx.feature,
            state.outcome.exception().__class__.__name__,
            state.attempt_number,
        )
        if on_retry is not None:
            on_retry()

    retrying = Retrying(
        stop=stop_after_attempt(1 + settings.LLM_MAX_RETRIES),
        wait=lambda state: next_wait[0],
        retry=retryable,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return call()
    except errors.ProviderError as exc:
        raise typed_error(exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _release_connection() -> None:
    """With psycopg's pool (DB_POOL), give the thread's database connection back while the provider answers: a
    call takes seconds, and a worker streaming hundreds of answers at once (rounds of the table in many sessions)
    would otherwise hold a connection per answer for nothing. Inside a transaction the connection is kept."""
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()  # back to the pool; the next query borrows one again


def _one_call(ctx: _CallContext, request: ProviderRequest) -> tuple[ProviderResponse, TokenUsage, int]:
    ctx.attempts += 1
    _release_connection()
    if (sending := _before_send.get()) is not None:
        sending()
    started = time.monotonic()
    try:
        try:
            response = ctx.provider.complete(request)
        finally:
            if isinstance(request.on_delta, DeltaBatcher):
                request.on_delta.flush()  # all of this attempt's text, before a reset, a retry or the result
    except errors.ProviderError as exc:
        if not exc.sent:
            raise  # nothing reached the provider: there is no request to meter
        if exc.estimate_input:
            tokens = TokenUsage(
                input_tokens=count_message_tokens(ctx.messages),
                output_tokens=count_tokens(exc.partial_text),
                source=UsageSource.ESTIMATED,
            )
        else:
            # A 429, a 5xx, a refused connection or a rejected request: no completion came back, so the
            # model did not run and nothing was billed. Said as such, not as a reported zero.
            tokens = TokenUsage(source=UsageSource.NONE)
        _record_failure(ctx, tokens, exc, started=started, streamed=request.stream)
        raise
    except Exception as exc:
        # Anything unexpected is still a metered call, then a typed failure.
        _record_failure(ctx, TokenUsage(), exc, started=started, streamed=request.stream)
        logger.exception("Unexpected failure calling %s for %s", ctx.model, ctx.feature)
        raise errors.LLMError("The AI call failed unexpectedly. It has been logged; please try again.") from None

    if response.usage is not None:
        tokens = TokenUsage(
            input_tokens=response.usage.input_tokens,
            cached_input_tokens=response.usage.cached_input_tokens,
            output_tokens=response.usage.output_tokens,
            reasoning_tokens=response.usage.reasoning_tokens,
            source=UsageSource.REPORTED,
        )
    else:
        tokens = TokenUsage(
            input_tokens=count_message_tokens(ctx.messages),
            output_tokens=count_tokens(response.text),
            source=UsageSource.ESTIMATED,
        )
    event_id = _record(
        ctx,
        tokens,
        status=UsageStatus.OK,
        error_class="",
        latency_s=response.latency_s,
        ttft_s=response.ttft_s,
        streamed=request.stream,
        request_id=response.request_id,
        model_snapshot=response.model,
    )
    return response, tokens, event_id


def _record_failure(ctx, tokens: TokenUsage, exc: BaseException, *, started: float, streamed: bool) -> None:
    """A failed request is still one metered call: completions and embeddings record it the same way."""
    _record(
        ctx,
        tokens,
        status=UsageStatus.ERROR,
        error_class=exc.__class__.__name__,
        latency_s=time.monotonic() - started,
        ttft_s=None,
        streamed=streamed,
    )


def _record(
    ctx: _CallContext,
    tokens: TokenUsage,
    *,
    status,
    error_class,
    latency_s,
    ttft_s,
    streamed,
    request_id: str = "",
    cached: bool = False,
    model_snapshot: str = "",
) -> int:
    """``model_snapshot``: the model the provider says it ran (its answer's ``model``), beside the one asked for."""
    event = usage_event_record(
        feature=ctx.feature,
        provider=ctx.provider.name,
        model=ctx.model,
        model_alias=ctx.alias,
        tokens=tokens,
        status=status,
        error_class=error_class,
        user=ctx.user,
        job_id=ctx.job_id,
        focus_group_id=ctx.focus_group_id,
        persona_id=ctx.persona_id,
        latency_ms=_ms(latency_s),
        ttft_ms=_ms(ttft_s),
        streamed=streamed,
        simulated=ctx.provider.simulated,
        attempt=max(1, ctx.attempts),
        request_id=request_id,
        cached=cached,
        model_snapshot=model_snapshot,
    )
    ctx.event_ids.append(event.pk)
    # The cost as the column stores it (rounded to its places), without reading the row back.
    ctx.costs[event.pk] = None if event.cost_usd is None else event.cost_usd.quantize(_COST_PLACES)
    return event.pk


def _mark_failed(ctx: _CallContext, event_id: int, error_class: str = "Truncated") -> None:
    """The HTTP call succeeded but its content was unusable: the event says so."""
    UsageEvent.objects.filter(pk=event_id).update(status=UsageStatus.ERROR, error_class=error_class[:120])


def _typed_error(exc: errors.ProviderError) -> errors.LLMError:
    logger.warning("LLM call failed: %s", scrub(f"{exc.__class__.__name__}: {exc}"))
    if isinstance(exc, errors.ProviderRateLimited):
        return errors.LLMRateLimited("The AI provider is busy right now. Please try again in a minute.")
    if isinstance(exc, errors.ProviderTimeout):
        return errors.LLMTimeout("The AI took too long to answer. Please try again.")
    if isinstance(exc, errors.ProviderRejected):
        return errors.LLMConfigurationError(
            "The AI provider refused the request. An administrator needs to check the model configuration."
        )
    if isinstance(exc, errors.ProviderMalformed | errors.ProviderStreamCut):
        return errors.LLMUnavailable("The AI provider sent a broken answer. Please try again.")
    return errors.LLMUnavailable("The AI provider is unavailable right now. Please try again shortly.")


# --- embeddings ----------------------------------------------------------------------------------------------


def embedding_model_for(feature: str) -> tuple[str, str]:
    """(alias, model) for an embedding feature, from settings (``LLM_EMBEDDING_FEATURES``)."""
    try:
        alias = settings.LLM_EMBEDDING_FEATURES[feature]
    except KeyError:
        raise ValueError(f"Unknown embedding feature {feature!r}; add it to LLM_EMBEDDING_FEATURES") from None
    return alias, settings.LLM_EMBEDDING_MODELS[alias]


def embedding_model_name(feature: str) -> str:
    """The model ``embed(feature=…)`` uses now, as its usage events record it: the configured one, or the
    local model when there is no API key. Stored with results so they can be traced to the model."""
    alias, model = embedding_model_for(feature)
    return get_embedder(alias).fixed_model or model


def embed(
    *,
    feature: str,
    texts: list[str],
    user=None,
    job=None,
    dimensions: int | None = None,
    deadline_seconds: float | None = None,
    on_retry: Callable[[], None] | None = None,
) -> list[list[float]]:
    """One vector per text, in order, from ``/v1/embeddings`` (or the local model offline).

    Texts go in batches of ``LLM_EMBEDDING_BATCH_SIZE``; each batch is one request and one UsageEvent, checked
    against the user's quota first and retried like a completion. Every vector of a call has the same length
    (``dimensions``, or ``LLM_EMBEDDING_DIMENSIONS``, when given): a batch that breaks that, or an answer that
    cannot be read, is retried and then raises ``LLMInvalidEmbedding``. Blank texts are refused (ValueError):
    providers reject them, and a blank answer has nothing to rate.
    """
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("embed() takes non-blank strings only")
    alias, model = embedding_model_for(feature)
    if not texts:
        return []
    run = current_run()
    embedder = get_embedder(alias)
    ctx = _CallContext(
        feature=feature,
        alias=alias,
        model=embedder.fixed_model or model,
        user=user,
        job_id=getattr(job, "pk", job),
        focus_group_id=None,
        persona_id=None,
        provider=embedder,
        messages=[],
        deadline=time.monotonic() + (deadline_seconds or settings.LLM_DEADLINE_SECONDS),
    )
    # A local model has one size; only a provider can be asked for shorter vectors.
    wanted = None if embedder.fixed_model else (dimensions or settings.LLM_EMBEDDING_DIMENSIONS)
    size = max(1, settings.LLM_EMBEDDING_BATCH_SIZE)
    if run is not None:
        note_embedding_model(run, provider=embedder.name, model=ctx.model)
    # Embeddings are kept one text at a time: a text's vector does not depend on what it was sent with, and
    # callers batch differently from one process to the next (survey mode embeds anchors once per process).
    hashes = [
        embedding_hash(provider=embedder.name, model=ctx.model, texts=[text], dimensions=wanted) for text in texts
    ]
    found: dict[int, list[float]] = {}
    if run is not None and run.mode != ReplayMode.LIVE:
        found = _replayed_vectors(ctx, run, hashes, wanted)
        if len(found) < len(texts) and run.mode == ReplayMode.REPLAY:
            raise errors.LLMReplayMiss(
                f"This replay needs {len(texts) - len(found)} embedding(s) the cache does not hold, so it stopped "
                "without asking the AI provider. Replay it again allowing live answers for what is missing."
            )
    todo = [index for index in range(len(texts)) if index not in found]
    for start in range(0, len(todo), size):
        batch = todo[start : start + size]
        if user is not None:
            quota_check(user=user)
        request = EmbeddingRequest(
            model=ctx.model,
            texts=[texts[index] for index in batch],
            deadline=ctx.deadline,
            dimensions=wanted,
            encoding_format=settings.LLM_EMBEDDING_ENCODING_FORMAT,
        )
        expected = wanted or (len(next(iter(found.values()))) if found else None)
        call = partial(_one_embedding_call, ctx, request, expected)
        batch_vectors = _with_retries(ctx, call, on_retry, _typed_embedding_error)
        for index, vector in zip(batch, batch_vectors, strict=True):
            found[index] = vector
            if run is not None:
                keep_vector(run, hashes[index], vector, feature=feature, provider=embedder.name, model=ctx.model)
    return [found[index] for index in range(len(texts))]


def _replayed_vectors(
    ctx: _CallContext, run: RunRecord, hashes: list[str], expected: int | None
) -> dict[int, list[float]]:
    """The cached vector of each text that has one (by position); entries that cannot be read, or whose
    size disagrees, are discarded. One usage event, marked cached, for what was found."""
    entries = vector_entries(hashes)
    found: dict[int, list[float]] = {}
    width = expected
    for index, request_hash in enumerate(hashes):
        entry = entries.get(request_hash)
        if entry is None:
            continue
        try:
            (vector,) = vectors_unpack(entry.text)
        except (ValueError, struct.error):
            discard(entry)
            continue
        if width is not None and len(vector) != width:
            discard(entry)
            continue
        width = len(vector)
        found[index] = vector
        used(run, request_hash, entry)
    count_lookup(hit=True, count=len(found))
    count_lookup(hit=False, count=len(hashes) - len(found))
    if found:
        tokens = TokenUsage(
            input_tokens=sum(entries[hashes[i]].input_tokens for i in found), source=UsageSource.REPORTED
        )
        _record(
            ctx, tokens, status=UsageStatus.OK, error_class="", latency_s=0.0, ttft_s=None, streamed=False, cached=True
        )
    return found


def _one_embedding_call(ctx: _CallContext, request: EmbeddingRequest, expected_dimensions: int | None):
    ctx.attempts += 1
    started = time.monotonic()
    try:
        response = ctx.provider.embed(request)
        if expected_dimensions is not None and len(response.vectors[0]) != expected_dimensions:
            raise errors.ProviderMalformed(
                f"Embeddings of {len(response.vectors[0])} dimensions where {expected_dimensions} were expected"
            )
    except errors.ProviderError as exc:
        if not exc.sent:
            raise
        if exc.estimate_input:
            tokens = TokenUsage(input_tokens=_embedding_tokens(request.texts), source=UsageSource.ESTIMATED)
        else:
            tokens = TokenUsage(source=UsageSource.NONE)
        _record_failure(ctx, tokens, exc, started=started, streamed=False)
        raise
    except Exception as exc:
        _record_failure(ctx, TokenUsage(), exc, started=started, streamed=False)
        logger.exception("Unexpected failure embedding with %s for %s", ctx.model, ctx.feature)
        raise errors.LLMError("The AI call failed unexpectedly. It has been logged; please try again.") from None
    if response.input_tokens is not None:
        tokens = TokenUsage(input_tokens=response.input_tokens, source=UsageSource.REPORTED)
    else:
        tokens = TokenUsage(input_tokens=_embedding_tokens(request.texts), source=UsageSource.ESTIMATED)
    _record(
        ctx,
        tokens,
        status=UsageStatus.OK,
        error_class="",
        latency_s=response.latency_s,
        ttft_s=None,
        streamed=False,
        request_id=response.request_id,
        model_snapshot=response.model,
    )
    return response.vectors


def _embedding_tokens(texts: list[str]) -> int:
    return sum(count_tokens(text) for text in texts)


def _typed_embedding_error(exc: errors.ProviderError) -> errors.LLMError:
    if isinstance(exc, errors.ProviderMalformed):
        logger.warning("Embedding call failed: %s", scrub(f"{exc.__class__.__name__}: {exc}"))
        return errors.LLMInvalidEmbedding(
            "The AI provider sent embeddings in the wrong shape, twice or more. Please try again; if it keeps "
            "happening, an administrator needs to check the embedding model (LLM_MODEL_EMBEDDING)."
        )
    return _typed_error(exc)
