"""Providers behind the gateway: named OpenAI-compatible endpoints (llm/config.py), or the offline simulator.

A provider makes ONE request and reports what happened; retries, validation and metering belong to the
gateway. The request streams when someone watches the answer arrive (``on_delta``); otherwise it is a plain
request, answered in one body: a streamed answer costs the worker every chunk's trip through the HTTP client
and its SSE decoder (a large share of a worker's CPU with 50 sessions at once), for tokens nobody sees.

What differs between kinds of endpoint is handled here:
Azure's deployment URLs and ``api-key`` header (the SDK's AzureOpenAI client), the token-limit parameter
self-hosted servers read, Gemini's thinking tokens reported beside ``completion_tokens``, and streams that
name the model only in some chunks or carry no usage at all (the gateway then estimates)."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import httpx2
from django.conf import settings

from llm.config import ProviderConfig
from llm.errors import (
    ProviderError,
    ProviderMalformed,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderStreamCut,
    ProviderTimeout,
    ProviderUnavailable,
)

DeltaCallback = Callable[[str], None]


@dataclass
class ProviderUsage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class ProviderResponse:
    text: str
    finish_reason: str | None
    usage: ProviderUsage | None
    ttft_s: float | None
    latency_s: float
    model: str  # the model the provider says it ran (e.g. "gpt-5.4-2026-03-05"); the one asked for if it named none
    request_id: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class ProviderRequest:
    model: str
    messages: list[dict]
    response_format: dict | None
    max_tokens: int | None
    temperature: float | None
    deadline: float  # time.monotonic() by which the call must be over
    on_delta: DeltaCallback | None = None
    seed_hint: str = ""

    @property
    def stream(self) -> bool:
        """Streamed when someone watches the answer arrive; a plain request otherwise."""
        return self.on_delta is not None


def retry_after(exc) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _usage_from(raw: dict | None, *, reasoning_apart: bool = False) -> ProviderUsage | None:
    """Usage as the gateway meters it. ``output_tokens`` includes reasoning tokens, as OpenAI counts them
    inside ``completion_tokens``. Gemini's OpenAI-compatible endpoint reports its thinking tokens beside
    them instead (``total_tokens`` = prompt + completion + reasoning) and bills them as output: they are
    added back, told apart by the total, or by the kind (``reasoning_apart``) when there is no total."""
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    prompt = raw.get("prompt_tokens") or 0
    completion = raw.get("completion_tokens") or 0
    reasoning = completion_details.get("reasoning_tokens") or 0
    total = raw.get("total_tokens")
    if reasoning and (total == prompt + completion + reasoning if isinstance(total, int) else reasoning_apart):
        completion += reasoning
    return ProviderUsage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=reasoning,
    )


def provider_config(name: str | None = None) -> ProviderConfig | None:
    """The configured provider ``name`` (default: the default provider), or None when there is none. The
    default provider set by the single-provider variables reads them from settings now, so a test (or a
    worker) that points ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` elsewhere is followed."""
    name = name or settings.LLM_PROVIDER_NAME
    config = settings.LLM_PROVIDERS.get(name)
    if config is None and name == settings.LLM_PROVIDER_NAME:
        config = ProviderConfig(name=name, uses_openai_env=True)  # settings that predate named providers
    if config is not None and config.uses_openai_env:
        config = replace(config, api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL)
    return config


def alias_provider_name(alias: str | None) -> str:
    """The provider an alias (chat or embedding) runs on: ``settings.LLM_ALIAS_PROVIDERS``, else the default."""
    return settings.LLM_ALIAS_PROVIDERS.get(alias or "", settings.LLM_PROVIDER_NAME)


# Servers that read the older ``max_tokens`` (Ollama lists only it); OpenAI's reasoning models refuse it.
_MAX_TOKENS_KINDS = frozenset({"gemini", "vllm", "ollama"})
KEYLESS_PLACEHOLDER = "unused"  # the SDK needs a key; keyless servers ignore the header
RAW_RESPONSE = "X-Stainless-Raw-Response"


@lru_cache(maxsize=16)
def _client(kind: str, api_key: str, base_url: str, api_version: str, connect_timeout: float, read_timeout: float):
    # The OpenAI SDK takes about a second to import: only processes that call the provider load it.
    import openai

    # Our gateway retries (honouring Retry-After, within a deadline); the SDK's own retries would multiply them.
    timeout = openai.Timeout(read_timeout, connect=connect_timeout, read=read_timeout)
    if kind == "azure":
        # /openai/deployments/<model>/chat/completions?api-version=…, the key in an api-key header.
        return openai.AzureOpenAI(
            api_key=api_key, azure_endpoint=base_url, api_version=api_version, max_retries=0, timeout=timeout
        )
    return openai.OpenAI(
        api_key=api_key or KEYLESS_PLACEHOLDER, base_url=base_url or None, max_retries=0, timeout=timeout
    )


class OpenAIProvider:
    """One named OpenAI-compatible endpoint (``config``; default: the default provider)."""

    name = "openai"
    simulated = False

    def __init__(self, config: ProviderConfig | None = None) -> None:
        config = config or provider_config()
        assert config is not None  # provider_config() always has the default provider
        self.config = config
        self.name = config.name

    def client(self):
        config = self.config
        return _client(
            config.kind,
            config.api_key,
            config.base_url,
            config.api_version,
            settings.LLM_CONNECT_TIMEOUT,
            settings.LLM_READ_TIMEOUT,
        )

    def complete(self, request: ProviderRequest) -> ProviderResponse:
        # The SDK's exception classes, from the module the client above already loaded.
        import openai

        started = time.monotonic()
        remaining = request.deadline - started
        if remaining <= 0:
            raise ProviderTimeout("Deadline passed before the call", sent=False)
        options: dict = {"model": request.model, "messages": request.messages}
        if request.stream:
            options["stream"] = True
            options["stream_options"] = {"include_usage": True}
        if request.response_format is not None:
            options["response_format"] = request.response_format
        if request.max_tokens is not None:
            limit = "max_tokens" if self.config.kind in _MAX_TOKENS_KINDS else "max_completion_tokens"
            options[limit] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        # A stream is hung when no byte came for LLM_READ_TIMEOUT. A plain answer's first byte comes when the
        # whole answer is written, which for a long one can take minutes: only the call's deadline bounds it.
        read = min(settings.LLM_READ_TIMEOUT, remaining) if request.stream else remaining
        timeout = openai.Timeout(read, connect=min(settings.LLM_CONNECT_TIMEOUT, remaining), read=read)
        got = _Got()
        try:
            if request.stream:
                self._streamed(openai, options, timeout, request, started, got)
            else:
                self._plain(options, timeout, got)
        except ProviderError:
            raise
        except openai.RateLimitError as exc:
            raise ProviderRateLimited("Rate limited by the provider", retry_after=retry_after(exc)) from None
        except openai.APITimeoutError:
            raise ProviderTimeout("The provider did not answer in time", partial_text=got.text()) from None
        except openai.APIConnectionError as exc:
            if got.parts or (not request.stream and _cut_after_sending(exc)):
                # The provider had the request and began to answer: a stream, or a plain body cut short.
                raise ProviderStreamCut("The answer broke off", partial_text=got.text()) from None
            raise ProviderUnavailable("Could not reach the provider") from None
        except openai.InternalServerError as exc:
            raise ProviderServerError(f"Provider error {exc.status_code}", retry_after=retry_after(exc)) from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise ProviderServerError(f"Provider error {exc.status_code}", retry_after=retry_after(exc)) from None
            raise ProviderRejected(f"The provider refused the request ({exc.status_code})") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError):
            raise ProviderMalformed(
                "The provider sent a response that could not be read", partial_text=got.text()
            ) from None
        text = got.text()
        if got.finish is None and got.usage is None:
            # Ended without a finish reason or usage: the connection was cut.
            raise ProviderStreamCut("The stream ended before it finished", partial_text=text)
        return ProviderResponse(
            text=text,
            finish_reason=got.finish,
            usage=got.usage,
            ttft_s=got.ttft,
            latency_s=time.monotonic() - started,
            model=got.model or request.model,
            request_id=got.request_id,
        )

    def _streamed(self, openai, options: dict, timeout, request: ProviderRequest, started: float, got: "_Got") -> None:
        # The SDK's own request, SSE decoding and error types, but each chunk stays the JSON dict it
        # was: building a pydantic ChatCompletionChunk per token was a fifth of a worker's CPU with
        # 50 sessions streaming at once.
        stream = self.client().post(
            "/chat/completions",
            body=options,
            cast_to=object,
            options={"timeout": timeout, "security": {"bearer_auth": True}},
            stream=True,
            stream_cls=openai.Stream[object],
        )
        got.note_headers(stream.response.headers)
        parts = got.parts
        with stream:
            for chunk in stream:
                if not isinstance(chunk, dict):
                    raise ProviderMalformed("The provider sent a chunk that is not an object", partial_text=got.text())
                if chunk.get("usage"):
                    got.usage = _usage_from(chunk["usage"], reasoning_apart=self.config.kind == "gemini")
                # Azure's first chunk (prompt filter results) names no model: keep the last one named.
                if isinstance(chunk.get("model"), str) and chunk["model"]:
                    got.model = chunk["model"]
                for choice in chunk.get("choices") or []:
                    if not isinstance(choice, dict):
                        raise ProviderMalformed("The provider sent a malformed choice", partial_text=got.text())
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        if got.ttft is None:
                            got.ttft = time.monotonic() - started
                        parts.append(delta)
                        if request.on_delta is not None:
                            request.on_delta(delta)
                    if choice.get("finish_reason"):
                        got.finish = choice["finish_reason"]
                if time.monotonic() > request.deadline:
                    raise ProviderTimeout("The call ran past its deadline", partial_text=got.text())

    def _plain(self, options: dict, timeout, got: "_Got") -> None:
        raw = self.client().post(
            "/chat/completions",
            body=options,
            cast_to=object,
            # The SDK's raw-response switch (what ``with_raw_response`` sets): the headers beside the parsed body.
            options={"timeout": timeout, "security": {"bearer_auth": True}, "headers": {RAW_RESPONSE: "true"}},
        )
        got.note_headers(raw.headers)
        answer = raw.parse()
        if not isinstance(answer, dict):
            raise ProviderMalformed("The provider sent an answer that is not an object")
        got.usage = _usage_from(answer.get("usage"), reasoning_apart=self.config.kind == "gemini")
        if isinstance(answer.get("model"), str) and answer["model"]:
            got.model = answer["model"]
        choices = answer.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise ProviderMalformed("The provider sent an answer without a choice")
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if content:
            got.parts.append(content)  # all at once: when its first token came is not known (no ttft)
        got.finish = choices[0].get("finish_reason")


@dataclass
class _Got:
    """What an answer brought so far: failures report the text that arrived before them."""

    parts: list[str] = field(default_factory=list)
    usage: ProviderUsage | None = None
    finish: str | None = None
    ttft: float | None = None
    model: str = ""  # the model the provider says it ran (a dated snapshot), from the chunks that name one
    request_id: str = ""

    def text(self) -> str:
        return "".join(self.parts)

    def note_headers(self, headers) -> None:
        self.request_id = headers.get("x-request-id") or headers.get("apim-request-id") or ""  # the latter: Azure


def _cut_after_sending(exc) -> bool:
    """A plain request whose answer broke off after the provider began sending it (its body cut short), as
    opposed to a provider that could not be reached at all."""
    return isinstance(exc.__cause__, httpx2.RemoteProtocolError | httpx2.ReadError)
