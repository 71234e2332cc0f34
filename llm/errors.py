"""Typed failures of the LLM gateway. Messages are safe to show: no secrets,
no provider internals; API views render them with their status code."""

from cohorta.errors import ApplicationError


class LLMError(ApplicationError):
    status_code = 502
    code = "llm_error"


class LLMUnavailable(LLMError):
    """The provider could not be reached or kept failing (5xx, connection errors)."""

    status_code = 503
    code = "llm_unavailable"


class LLMRateLimited(LLMError):
    """The provider kept answering 429 past our retries or deadline."""

    status_code = 503
    code = "llm_rate_limited"


class LLMTimeout(LLMError):
    status_code = 504
    code = "llm_timeout"


class LLMInvalidOutput(LLMError):
    """Structured output stayed invalid after one retry."""

    code = "llm_invalid_output"


class LLMTruncated(LLMError):
    """The model hit its token limit; cut-off output is never repaired."""

    code = "llm_truncated"


class LLMInvalidEmbedding(LLMError):
    """Embeddings that could not be read, or whose dimensions disagree, after the retries."""

    code = "llm_invalid_embedding"


class LLMConfigurationError(LLMError):
    """The provider refused our credentials or request: retrying cannot help."""

    status_code = 502
    code = "llm_configuration"


class LLMReplayMiss(LLMError):
    """An exact replay asked for an answer the cache does not hold: the provider is never called instead."""

    status_code = 409
    code = "llm_replay_miss"


# --- provider-level failures (internal; the gateway turns them into the above) ---


class ProviderError(Exception):
    retryable = True
    estimate_input = False  # the provider may have processed (and billed) the prompt

    def __init__(
        self, message: str, *, partial_text: str = "", retry_after: float | None = None, sent: bool = True
    ) -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.retry_after = retry_after
        self.sent = sent  # False: raised before any request left, so nothing is metered


class ProviderRateLimited(ProviderError):
    pass


class ProviderServerError(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    pass


class ProviderTimeout(ProviderError):
    estimate_input = True


class ProviderStreamCut(ProviderError):
    estimate_input = True


class ProviderMalformed(ProviderError):
    estimate_input = True


class ProviderRejected(ProviderError):
    """4xx other than 429: bad credentials, bad request. Not retried."""

    retryable = False
