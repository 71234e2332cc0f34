"""Providers behind the gateway: any OpenAI-compatible endpoint, or the offline simulator.

A provider makes ONE streamed request and reports what happened; retries,
validation and metering belong to the gateway."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

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
    model: str
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


def _usage_from(raw: dict | None) -> ProviderUsage | None:
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return ProviderUsage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_input_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


@lru_cache(maxsize=4)
def _client(api_key: str, base_url: str, connect_timeout: float, read_timeout: float):
    # The OpenAI SDK takes about a second to import: only processes that call the provider load it.
    import openai

    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url or None,
        # Our gateway retries (honouring Retry-After, within a deadline);
        # the SDK's own retries would multiply them.
        max_retries=0,
        timeout=openai.Timeout(read_timeout, connect=connect_timeout, read=read_timeout),
    )


class OpenAIProvider:
    name = "openai"
    simulated = False

    def __init__(self) -> None:
        self.name = settings.LLM_PROVIDER_NAME

    def client(self):
        return _client(
            settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.LLM_CONNECT_TIMEOUT, settings.LLM_READ_TIMEOUT
        )

    def complete(self, request: ProviderRequest) -> ProviderResponse:
        # The SDK's exception classes, from the module the client above already loaded.
        import openai

        started = time.monotonic()
        remaining = request.deadline - started
        if remaining <= 0:
            raise ProviderTimeout("Deadline passed before the call", sent=False)
        options: dict = {"model": request.model, "messages": request.messages, "stream": True}
        options["stream_options"] = {"include_usage": True}
        if request.response_format is not None:
            options["response_format"] = request.response_format
        if request.max_tokens is not None:
            options["max_completion_tokens"] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        timeout = openai.Timeout(
            min(settings.LLM_READ_TIMEOUT, remaining),
            connect=min(settings.LLM_CONNECT_TIMEOUT, remaining),
            read=min(settings.LLM_READ_TIMEOUT, remaining),
        )
        parts: list[str] = []
        ttft: float | None = None
        usage: ProviderUsage | None = None
        finish: str | None = None
        request_id = ""
        try:
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
            request_id = stream.response.headers.get("x-request-id", "")
            with stream:
                for chunk in stream:
                    if not isinstance(chunk, dict):
                        raise ProviderMalformed(
                            "The provider sent a chunk that is not an object", partial_text="".join(parts)
                        )
                    if chunk.get("usage"):
                        usage = _usage_from(chunk["usage"])
                    for choice in chunk.get("choices") or []:
                        if not isinstance(choice, dict):
                            raise ProviderMalformed("The provider sent a malformed choice", partial_text="".join(parts))
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if ttft is None:
                                ttft = time.monotonic() - started
                            parts.append(delta)
                            if request.on_delta is not None:
                                request.on_delta(delta)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    if time.monotonic() > request.deadline:
                        raise ProviderTimeout("The call ran past its deadline", partial_text="".join(parts))
        except ProviderError:
            raise
        except openai.RateLimitError as exc:
            raise ProviderRateLimited("Rate limited by the provider", retry_after=retry_after(exc)) from None
        except openai.APITimeoutError:
            raise ProviderTimeout("The provider did not answer in time", partial_text="".join(parts)) from None
        except openai.APIConnectionError:
            if parts:
                raise ProviderStreamCut("The stream broke off", partial_text="".join(parts)) from None
            raise ProviderUnavailable("Could not reach the provider") from None
        except openai.InternalServerError as exc:
            raise ProviderServerError(f"Provider error {exc.status_code}", retry_after=retry_after(exc)) from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise ProviderServerError(f"Provider error {exc.status_code}", retry_after=retry_after(exc)) from None
            raise ProviderRejected(f"The provider refused the request ({exc.status_code})") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError):
            raise ProviderMalformed(
                "The provider sent a response that could not be read", partial_text="".join(parts)
            ) from None
        text = "".join(parts)
        if finish is None and usage is None:
            # Ended without a finish reason or usage: the connection was cut.
            raise ProviderStreamCut("The stream ended before it finished", partial_text=text)
        return ProviderResponse(
            text=text,
            finish_reason=finish,
            usage=usage,
            ttft_s=ttft,
            latency_s=time.monotonic() - started,
            model=request.model,
            request_id=request_id,
        )
