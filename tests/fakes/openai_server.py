"""A fake OpenAI-compatible server: the Chat Completions wire protocol, on a real socket, with faults on demand.

The official ``openai`` SDK (3.52, over httpx2) works against it unmodified::

    with FakeOpenAIServer(ttft=0.2, tokens_per_second=50) as server:
        client = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
        server.responses[-1].usage  # exactly what the server reported: the truth to compare against

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true``), ``POST /v1/embeddings``,
``GET /v1/models`` and ``GET /v1/models/{id}``. Every request needs ``Authorization: Bearer <api_key>``; anything
else is a 401 with an OpenAI-style error body that never repeats the key that was sent.

What it answers:

* plain requests: a persona's first-person answer of roughly ``completion_tokens`` tokens, picking up words
  of the last user message (``llm.schema_faker.reply_sentences``);
* ``response_format={"type": "json_schema", "json_schema": {"schema": ...}}``: compact JSON of
  ``fake_instance(schema, seed=<hash of the request>)``, which validates against the schema;
* ``response_format={"type": "json_object"}``: a small JSON object.

* ``/v1/embeddings``: one vector per input (a string or a list of strings), ``embedding_dimensions`` long (or the
  request's ``dimensions``), a deterministic bag-of-words hash of the text (``llm.embedders.hashing_vector``):
  texts sharing words point alike. ``encoding_format`` ``float`` (default) or ``base64`` (little-endian float32);
  ``usage.prompt_tokens`` = ``total_tokens`` = the o200k_base tokens of the inputs. ``embedding_requests`` counts them.

The content is a pure function of (model, messages, response_format, seed): the same request gets the same
answer, streamed or not. ``max_completion_tokens``/``max_tokens`` are honoured (cut, ``finish_reason
"length"``).

Usage is deterministic and counted with the o200k_base encoding (``bpe_openai``, offline):
``prompt_tokens = 3 + sum(3 + tokens(text of message))`` over the request's messages (see
``count_prompt_tokens``), ``completion_tokens = tokens(content sent) + reasoning_tokens``,
``cached_tokens = min(cached_tokens, prompt_tokens)``.

Timing: ``ttft`` seconds before the first content token, then ``tokens_per_second`` (0 = no pacing). A
non-streamed answer is sent after the same total time. All settings can be changed on the live object.
The server keeps its own clock for tests that check durations (a client's clock runs late whenever the
client is descheduled): each request's ``received_monotonic`` and each answer's ``content_sent_at``, and a
``hang`` records whether the client hung up before it ended (``client_disconnected``).

Faults (``add_fault``) are queued first in, first out, and are taken by the next chat-completion or embeddings
requests (``/v1/models`` and rejected-key requests never take one). See ``FAULT_KINDS`` and the report of each kind
in ``add_fault``.

Run by hand or for benchmarks::

    python -m tests.fakes.openai_server --port 8800 --ttft 0.5 --tokens-per-second 40 --api-key test-key
"""

from __future__ import annotations

import argparse
import base64
import codecs
import contextlib
import hashlib
import hmac
import http.server
import json
import math
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from llm.embedders import hashing_vector
from llm.schema_faker import fake_instance, reply_sentences
from tests.fakes.hang import hang

__all__ = ["FAULT_KINDS", "SHAPES", "FakeOpenAIServer", "RecordedRequest", "RecordedResponse", "count_prompt_tokens"]

FAULT_KINDS: dict[str, dict[str, Any]] = {
    # kind: the options it takes, with their defaults
    "rate_limit": {"retry_after": 1, "message": "Rate limit reached for requests. Please try again later."},
    "server_error": {"status": 500, "message": "The server had an error while processing your request. Sorry!"},
    "hang": {"seconds": 30.0},
    "malformed_json": {},
    "invalid_output": {"content": '{"unexpected": true}'},
    "garbage_output": {"content": None},
    "truncated": {"fraction": 0.5},
    "stream_cut": {"after_tokens": None},
    "no_usage": {},
    "wrong_dimension": {"dimension": 17},
}
# What each kind of provider's OpenAI-compatible endpoint does differently (see FakeOpenAIServer's ``shape``).
SHAPES = ("openai", "gemini", "azure", "vllm", "ollama")
GEMINI_PREFIX = "/v1beta/openai"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "o4-mini", "text-embedding-3-small")
_MESSAGE_OVERHEAD = 3  # tokens per message, as in OpenAI's cookbook
_REPLY_OVERHEAD = 3  # every reply is primed with <|start|>assistant<|message|>

_encoding_lock = threading.Lock()
_encoding: Any = None


def _encoder() -> Any:
    """The o200k_base encoding, loaded once (about 0.2 s). Calls are serialised: the encoder keeps state."""
    global _encoding
    with _encoding_lock:
        if _encoding is None:
            import bpe_openai

            _encoding = bpe_openai.get_encoding("o200k_base")
        return _encoding


def _encode(text: str) -> list[int]:
    encoding = _encoder()
    with _encoding_lock:
        return list(encoding.encode_ordinary(text))


def _token_bytes(tokens: list[int]) -> list[bytes]:
    encoding = _encoder()
    with _encoding_lock:
        return [encoding.decode_single_token_bytes(t) for t in tokens]


def _message_text(message: Any) -> str:
    """The text of a chat message: a string content, or the text parts of a list content."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def count_prompt_tokens(messages: list[Any]) -> int:
    """``3 + sum(3 + len(o200k_base(text of message)))``: what the server reports as ``prompt_tokens``."""
    return _REPLY_OVERHEAD + sum(_MESSAGE_OVERHEAD + len(_encode(_message_text(m))) for m in messages)


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in o200k_base, as the server counts content."""
    return len(_encode(text))


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when there was no body or it was not JSON
    received_at: float = field(default_factory=time.time)  # wall clock, to match with other processes' records
    received_monotonic: float = field(default_factory=time.monotonic)  # for durations on the server's clock
    request_id: str = ""  # the id its answer carries (``RecordedResponse.request_id``)


@dataclass
class RecordedResponse:
    """What the server answered to one request (recorded before the last byte is sent, so no race)."""

    path: str
    status: int | None  # None: nothing was sent (hang)
    usage: dict[str, Any] | None  # the usage object as put on the wire, or None when none was sent
    content: str | None  # the assistant content sent (for stream_cut: only the part that was sent)
    streamed: bool
    fault: str | None
    finish_reason: str | None = None
    model: str | None = None
    request_id: str | None = None
    completion_id: str | None = None
    client_disconnected: bool = False  # the client went away before the answer was complete (a hang: was over)
    # time.monotonic() as each piece of content went out: every streamed delta, or a plain answer's body.
    content_sent_at: list[float] = field(default_factory=list)
    # time.monotonic() once the last byte of a chat completion was written (None: not finished, or not one).
    completed_at: float | None = None


@dataclass
class _Fault:
    kind: str
    remaining: int
    options: dict[str, Any]
    match: Any = None  # None: any request; a string the request's JSON must contain; or a predicate on its body


class _ClientGone(Exception):
    pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: benchmarks open many connections at once
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeOpenAIServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeout, closed stream, reset keep-alive) is business as usual here.
        if self.owner.stopping.is_set() or isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # one small write per token: do not let Nagle batch them
    server: _Server

    # ---- plumbing ----------------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:  # BrokenPipe, ConnectionReset: the client went away
            raise _ClientGone from exc

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_bytes(status, body, "application/json", headers)

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._id_headers()
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._write(body)

    def _id_headers(self) -> None:
        """The request id as the provider names it: ``x-request-id`` (OpenAI), also ``apim-request-id`` (Azure),
        none (Gemini's OpenAI-compatible endpoint, vLLM, Ollama)."""
        shape = self.server.owner.shape
        if shape in ("openai", "azure"):
            self.send_header("x-request-id", self.request_id)
        if shape == "azure":
            self.send_header("apim-request-id", self.request_id.removeprefix("req_"))

    def _error(self, status: int, message: str, type_: str, code: str | None, param: str | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})

    def _abort(self) -> None:
        """Close the connection at once, mid-message if need be."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ---- routing -----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        self.request_id = f"req_{uuid.uuid4().hex[:24]}"
        path = self.path.split("?", 1)[0].rstrip("/")
        self.deployment: str | None = None
        raw = self._read_body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        owner._record_request(
            RecordedRequest(
                method, path, {k.lower(): v for k, v in self.headers.items()}, body, request_id=self.request_id
            )
        )
        api_path = self._api_path(path) if owner.shape != "openai" else path
        try:
            if api_path is None:  # not an endpoint at this provider's URLs
                owner._record_response(RecordedResponse(path, 404, None, None, False, None, request_id=self.request_id))
                self._error(404, f"Unknown request URL: {method} {path}.", "invalid_request_error", "unknown_url")
                return
            path = api_path  # the same endpoints, at the provider's own URLs
            if not self._authorised():
                owner._record_response(RecordedResponse(path, 401, None, None, False, None, request_id=self.request_id))
                self._error(401, self._auth_message(), "invalid_request_error", "invalid_api_key")
                return
            if path == "/v1/models" and method == "GET":
                owner._record_response(RecordedResponse(path, 200, None, None, False, None, request_id=self.request_id))
                self._send_json(200, {"object": "list", "data": [_model_object(m) for m in owner.models]})
                return
            if path.startswith("/v1/models/") and method == "GET":
                model = path.removeprefix("/v1/models/")
                if model not in owner.models:
                    owner._record_response(
                        RecordedResponse(path, 404, None, None, False, None, request_id=self.request_id)
                    )
                    self._error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
                    return
                owner._record_response(RecordedResponse(path, 200, None, None, False, None, request_id=self.request_id))
                self._send_json(200, _model_object(model))
                return
            if path == "/v1/chat/completions":
                if method != "POST":
                    owner._record_response(
                        RecordedResponse(path, 405, None, None, False, None, request_id=self.request_id)
                    )
                    self._error(405, f"Method {method} not allowed.", "invalid_request_error", None)
                    return
                self._chat_completions(raw, body)
                return
            if path == "/v1/embeddings":
                if method != "POST":
                    owner._record_response(
                        RecordedResponse(path, 405, None, None, False, None, request_id=self.request_id)
                    )
                    self._error(405, f"Method {method} not allowed.", "invalid_request_error", None)
                    return
                self._embeddings(raw, body)
                return
            owner._record_response(RecordedResponse(path, 404, None, None, False, None, request_id=self.request_id))
            self._error(404, f"Unknown request URL: {method} {path}.", "invalid_request_error", "unknown_url")
        except _ClientGone:
            self.close_connection = True
            last = owner._last_response_for(self.request_id)
            if last is not None:
                last.client_disconnected = True

    def _api_path(self, path: str) -> str | None:
        """The OpenAI path a provider-shaped URL stands for (an unknown URL stays unknown: a 404 below).
        Gemini: ``/v1beta/openai/...``. Azure: ``/openai/deployments/<deployment>/...?api-version=...`` (the
        deployment recorded; without api-version the path is not served)."""
        shape = self.server.owner.shape
        if shape == "gemini":
            return "/v1/" + path.removeprefix(GEMINI_PREFIX + "/") if path.startswith(GEMINI_PREFIX + "/") else None
        if shape == "azure":
            parts = path.split("/")
            query = urllib.parse.parse_qs(self.path.partition("?")[2])
            if len(parts) >= 5 and parts[1:3] == ["openai", "deployments"] and query.get("api-version"):
                self.deployment = urllib.parse.unquote(parts[3])
                return "/v1/" + "/".join(parts[4:])
            return None
        return path

    def _authorised(self) -> bool:
        owner = self.server.owner
        if owner.shape == "ollama" or (owner.shape == "vllm" and not owner.api_key):
            return True  # a local server started without a key takes any (or no) Authorization header
        if owner.shape == "azure":
            return hmac.compare_digest(self.headers.get("api-key", "").encode(), owner.api_key.encode())
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        expected = self.server.owner.api_key
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())

    def _auth_message(self) -> str:
        if not self.headers.get("Authorization"):
            return (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        return "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."

    # ---- embeddings --------------------------------------------------------------------------------------

    def _embeddings(self, raw: bytes, body: Any) -> None:
        owner = self.server.owner
        path = "/v1/embeddings"
        problem = _validate_embeddings_body(raw, body)
        if problem is not None:
            message, param = problem
            owner._record_response(RecordedResponse(path, 400, None, None, False, None, request_id=self.request_id))
            self._error(400, message, "invalid_request_error", None, param)
            return
        with owner._lock:
            owner.embedding_requests += 1
        fault = owner._take_fault(body)
        kind = fault.kind if fault else None
        options = fault.options if fault else {}
        model = body["model"]
        if kind == "hang":
            record = RecordedResponse(path, None, None, None, False, kind, model=model, request_id=self.request_id)
            owner._record_response(record)
            hang(self.connection, float(options["seconds"]), owner.stopping, lambda: _mark_hung_up(record))
            self._abort()
            return
        if kind == "rate_limit":
            retry_after = float(options["retry_after"])
            owner._record_response(
                RecordedResponse(path, 429, None, None, False, kind, model=model, request_id=self.request_id)
            )
            headers = {"retry-after": _format_seconds(retry_after), "retry-after-ms": str(round(retry_after * 1000))}
            payload = {
                "error": {"message": options["message"], "type": "rate_limit_error", "param": None,
                          "code": "rate_limit_exceeded"}
            }  # fmt: skip
            self._send_json(429, payload, headers)
            return
        if kind == "server_error":
            status = int(options["status"])
            owner._record_response(
                RecordedResponse(path, status, None, None, False, kind, model=model, request_id=self.request_id)
            )
            self._error(status, options["message"], "server_error", None)
            return

        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        dimensions = body.get("dimensions") or owner.embedding_dimensions
        vectors = [hashing_vector(text, dimensions) for text in texts]
        if kind == "wrong_dimension":  # the last vector of the answer has another length
            vectors[-1] = hashing_vector(texts[-1], int(options["dimension"]))
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _base64_floats(v) if as_base64 else v}
            for i, v in enumerate(vectors)
        ]
        tokens = sum(count_tokens(text) for text in texts)
        usage = None if kind in ("no_usage", "malformed_json") else {"prompt_tokens": tokens, "total_tokens": tokens}
        payload = {"object": "list", "data": data, "model": owner._reported_model(model, self.deployment)}
        if usage is not None:
            payload["usage"] = usage
        owner._record_response(
            RecordedResponse(path, 200, usage, None, False, kind, model=model, request_id=self.request_id)
        )
        text = json.dumps(payload)
        if kind == "malformed_json":
            self._send_bytes(200, text[: max(1, len(text) // 2)].encode(), "application/json")
            return
        if kind == "stream_cut":  # promise the whole body, send half, hang up
            encoded = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self._id_headers()
            self.end_headers()
            self._write(encoded[: len(encoded) // 2])
            self._abort()
            return
        self._send_bytes(200, text.encode(), "application/json")

    # ---- chat completions --------------------------------------------------------------------------------

    def _chat_completions(self, raw: bytes, body: Any) -> None:
        owner = self.server.owner
        path = "/v1/chat/completions"
        problem = _validate_chat_body(raw, body)
        if problem is not None:
            message, param = problem
            owner._record_response(RecordedResponse(path, 400, None, None, False, None, request_id=self.request_id))
            self._error(400, message, "invalid_request_error", None, param)
            return

        fault = owner._take_fault(body)
        kind = fault.kind if fault else None
        options = fault.options if fault else {}
        stream = bool(body.get("stream"))
        model = body["model"]

        if kind == "hang":
            record = RecordedResponse(path, None, None, None, stream, kind, model=model, request_id=self.request_id)
            owner._record_response(record)
            hang(self.connection, float(options["seconds"]), owner.stopping, lambda: _mark_hung_up(record))
            self._abort()  # then hang up without a word
            return
        if kind == "rate_limit":
            retry_after = float(options["retry_after"])
            owner._record_response(
                RecordedResponse(path, 429, None, None, stream, kind, model=model, request_id=self.request_id)
            )
            headers = {
                "retry-after": _format_seconds(retry_after),
                "retry-after-ms": str(round(retry_after * 1000)),
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{_format_seconds(retry_after)}s",
            }
            payload = {
                "error": {"message": options["message"], "type": "rate_limit_error", "param": None,
                          "code": "rate_limit_exceeded"}
            }  # fmt: skip
            self._send_json(429, payload, headers)
            return
        if kind == "server_error":
            status = int(options["status"])
            owner._record_response(
                RecordedResponse(path, status, None, None, stream, kind, model=model, request_id=self.request_id)
            )
            self._error(status, options["message"], "server_error", None)
            return

        plan = owner._plan(body, kind, options)
        if stream:
            self._stream(body, plan, kind, options)
        else:
            self._complete(body, plan, kind)
        finished = owner._last_response_for(self.request_id)
        if finished is not None:
            finished.completed_at = time.monotonic()
            owner._log_call(self.request_id, body, finished)

    def _complete(self, body: dict[str, Any], plan: _Plan, kind: str | None) -> None:
        owner = self.server.owner
        total = owner.ttft + (len(plan.tokens) / owner.tokens_per_second if owner.tokens_per_second > 0 else 0)
        if total > 0 and owner.stopping.wait(total):
            self._abort()
            return
        usage = None if kind in ("no_usage", "malformed_json") else owner._wire_usage(plan.usage)
        completion_id = _completion_id()
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": owner._reported_model(body["model"], self.deployment),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": plan.content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": plan.finish_reason,
                }
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        if usage is not None:
            payload["usage"] = usage
        text = json.dumps(payload, ensure_ascii=False)
        data = text.encode()
        record = RecordedResponse(
            "/v1/chat/completions", 200, usage, plan.content, False, kind, plan.finish_reason,
            payload["model"], self.request_id, completion_id,
        )  # fmt: skip
        record.content_sent_at.append(time.monotonic())
        owner._record_response(record)
        if kind == "malformed_json":
            data = text[: max(1, len(text) // 2)].encode()  # valid JSON cut in half (on a character): not JSON
            self._send_bytes(200, data, "application/json")
            return
        if kind == "stream_cut":  # for a plain request: promise the whole body, send half, hang up
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._id_headers()
            self.end_headers()
            self._write(data[: len(data) // 2])
            self._abort()
            return
        self._send_bytes(200, data, "application/json")

    def _stream(self, body: dict[str, Any], plan: _Plan, kind: str | None, options: dict[str, Any]) -> None:
        owner = self.server.owner
        shape = owner.shape
        # Ollama (before it read stream_options) never sends usage in a stream.
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and shape != "ollama"
        usage = owner._wire_usage(plan.usage)
        reported_model = owner._reported_model(body["model"], self.deployment)
        completion_id = _completion_id()
        created = int(time.time())
        pieces = _pieces(plan.tokens)
        cut_after = None
        if kind == "stream_cut":
            after = options.get("after_tokens")
            cut_after = max(1, len(pieces) // 2) if after is None else max(0, int(after))
            cut_after = min(cut_after, max(len(pieces) - 1, 0))
        sent_content = "".join(pieces[:cut_after]) if cut_after is not None else plan.content
        send_usage = include_usage and kind not in ("no_usage", "stream_cut")
        record = RecordedResponse(
            "/v1/chat/completions", 200, usage if send_usage else None, sent_content, True, kind,
            None if kind == "stream_cut" else plan.finish_reason, reported_model, self.request_id, completion_id,
        )  # fmt: skip

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            if shape != "openai":
                return _shaped_chunk(shape, completion_id, created, reported_model, delta, finish_reason)
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": reported_model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = None
            return data

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self._id_headers()
        self.end_headers()
        if shape == "azure":  # Azure opens with the prompt's content-filter results: no choices, no model
            self._event(
                {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _AZURE_FILTER_OK}
                ]}
            )  # fmt: skip
        self._event(chunk({"role": "assistant", "content": "", "refusal": None}))

        start = time.monotonic()
        first_at = start + owner.ttft
        tps = owner.tokens_per_second
        for index, piece in enumerate(pieces):
            if cut_after is not None and index >= cut_after:
                owner._record_response(record)
                self._abort()  # mid-stream, before finish_reason, usage and [DONE]
                return
            due = first_at + (index / tps if tps > 0 else 0)
            delay = due - time.monotonic()
            if delay > 0 and owner.stopping.wait(delay):
                self._abort()
                return
            record.content_sent_at.append(time.monotonic())
            self._event(chunk({"content": piece}))
            if kind == "malformed_json" and index == 0:
                self._write(_http_chunk(b'data: {"id": "' + completion_id.encode() + b'", "choices": [{"delta": \n\n'))
        if cut_after is not None:  # nothing to cut after (empty content): hang up now
            owner._record_response(record)
            self._abort()
            return
        if not pieces and owner.ttft > 0 and owner.stopping.wait(max(0.0, first_at - time.monotonic())):
            self._abort()
            return
        owner._record_response(record)  # before the finish and usage chunks: a client never sees them first
        finish = chunk({}, plan.finish_reason)
        if send_usage and shape == "gemini":
            finish["usage"] = usage  # Gemini sends usage with the finish reason, not in a chunk of its own
        self._event(finish)
        if send_usage and shape != "gemini":
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            self._event(final)
        self._write(_http_chunk(b"data: [DONE]\n\n"))
        self._write(b"0\r\n\r\n")

    def _event(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self._write(_http_chunk(b"data: " + payload + b"\n\n"))


_AZURE_FILTER_OK = {
    category: {"filtered": False, "severity": "safe"} for category in ("hate", "self_harm", "sexual", "violence")
}


def _shaped_chunk(
    shape: str, completion_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    """A stream chunk as each kind of provider writes it (the ``openai`` shape is built in ``_stream``)."""
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    data: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if shape == "azure":
        choice["logprobs"] = None
        choice["content_filter_results"] = _AZURE_FILTER_OK if delta.get("content") else {}
        data["system_fingerprint"] = "fp_fake0001"
    elif shape == "vllm":
        choice["logprobs"] = None
    elif shape == "ollama":
        data["system_fingerprint"] = "fp_ollama"
    data["choices"] = [choice]
    return data


def _mark_hung_up(record: RecordedResponse) -> None:
    record.client_disconnected = True


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _pieces(tokens: list[int]) -> list[str]:
    """The content as stream deltas: one token each, except where a character spans tokens."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces = []
    for chunk in _token_bytes(tokens):
        text = decoder.decode(chunk)
        if text:
            pieces.append(text)
    tail = decoder.decode(b"", final=True)
    if tail:
        pieces.append(tail)
    return pieces


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:29]}"


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _validate_chat_body(raw: bytes, body: Any) -> tuple[str, str | None] | None:
    if not raw:
        return ("You must provide a JSON body.", None)
    if not isinstance(body, dict):
        return ("We could not parse the JSON body of your request.", None)
    if not isinstance(body.get("model"), str) or not body["model"]:
        return ("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ("Missing required parameter: 'messages'.", "messages")
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or response_format.get("type") not in (
            "text",
            "json_object",
            "json_schema",
        ):
            return ("Invalid value for 'response_format.type'.", "response_format.type")
        if response_format["type"] == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return ("Missing required parameter: 'response_format.json_schema.name'.", "response_format")
    return None


def _validate_embeddings_body(raw: bytes, body: Any) -> tuple[str, str | None] | None:
    if not raw:
        return ("You must provide a JSON body.", None)
    if not isinstance(body, dict):
        return ("We could not parse the JSON body of your request.", None)
    if not isinstance(body.get("model"), str) or not body["model"]:
        return ("you must provide a model parameter", "model")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return ("'input' must be a string or a non-empty array of strings.", "input")
    if any(not t for t in texts):
        return ("'$.input' is invalid: an input cannot be an empty string.", "input")
    if len(texts) > 2048:
        return ("'input' can have at most 2048 items.", "input")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return ("Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        return ("'dimensions' must be a positive integer.", "dimensions")
    return None


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@dataclass
class _Plan:
    content: str
    tokens: list[int]
    finish_reason: str
    usage: dict[str, Any]


def request_seed(body: dict[str, Any]) -> int:
    """The seed of the fake answer: a hash of what decides an answer (not of stream or timing options)."""
    key = {k: body.get(k) for k in ("model", "messages", "response_format", "seed")}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _garbage(content: str) -> str:
    """Text a model might say instead of JSON: chatter around a JavaScript-ish object that is cut off."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict) and data:
        parts = []
        for key, value in list(data.items())[:3]:
            shown = value if isinstance(value, str) else json.dumps(value)[:40]
            parts.append(f"{key}: {shown}")
        body = ", ".join(parts)
    else:
        body = f"answer: {content[:60]}"
    return f"Sure! Here is the JSON you asked for: {{{body}, ...\n\nLet me know if you need anything else!"


class FakeOpenAIServer:
    """A fake OpenAI Chat Completions server on 127.0.0.1, for tests and local benchmarks.

    Start it with ``with FakeOpenAIServer() as server:`` (or ``start()``/``stop()``); point a client at
    ``server.base_url``. ``ttft``, ``tokens_per_second``, ``completion_tokens``, ``cached_tokens``,
    ``reasoning_tokens``, ``embedding_dimensions`` and ``api_key`` can be changed while it runs.

    ``model_snapshots`` maps a requested model (for Azure: the deployment) to the model the answer says ran,
    e.g. ``{"gpt-5.4": "gpt-5.4-2026-03-05"}``; a model not in it is echoed, as by default.

    ``shape`` reproduces what one kind of provider's OpenAI-compatible endpoint does differently
    (``openai``, the default, is unchanged byte for byte):

    * ``gemini``: served under ``/v1beta/openai/`` (``base_url``); no ``x-request-id``; usage only when the
      stream asks for it, sent with the finish reason; thinking tokens (``reasoning_tokens``) reported in
      ``completion_tokens_details.reasoning_tokens`` *beside* ``completion_tokens`` (which counts the visible
      answer only) and counted in ``total_tokens``, as Gemini bills them as output.
    * ``azure``: ``/openai/deployments/<deployment>/chat/completions?api-version=…`` (and ``/embeddings``),
      ``base_url`` is the resource endpoint, the key in an ``api-key`` header (a Bearer token is a 401), no
      answer without ``api-version``; the stream opens with a prompt-filter chunk that has no choices and an
      empty ``model``; ``apim-request-id`` beside ``x-request-id``; the answer names the deployment's model.
    * ``vllm``: no key needed when ``api_key`` is empty; no ``x-request-id``; usage without token details.
    * ``ollama``: any key (or none); no ``x-request-id``; never usage in a stream (``stream_options``
      ignored, as before Ollama read it); a limit only from ``max_tokens``.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        ttft: float = 0.0,
        tokens_per_second: float = 0.0,
        completion_tokens: int = 40,
        host: str = "127.0.0.1",
        port: int = 0,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        models: tuple[str, ...] | list[str] = DEFAULT_MODELS,
        verbose: bool = False,
        embedding_dimensions: int = 1536,
        shape: str = "openai",
        model_snapshots: dict[str, str] | None = None,
        log_path: str | None = None,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
        self.shape = shape
        self.log_path = log_path  # a JSON line per finished chat completion (``_log_call``), for benchmarks
        self.model_snapshots = dict(model_snapshots or {})
        self.api_key = api_key
        self.ttft = ttft
        self.tokens_per_second = tokens_per_second
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.models = list(models)
        self.verbose = verbose
        self.embedding_dimensions = embedding_dimensions
        self.embedding_requests = 0  # /v1/embeddings requests that were well-formed (the batching check)
        self.host = host
        self._port = port
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._responses: list[RecordedResponse] = []
        self._faults: deque[_Fault] = deque()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        _encoder()  # load the tables before the first request, not during it
        self.stopping.clear()
        self._httpd = _Server((self.host, self._port), self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wakes hung and paced requests, closes open connections, waits for handlers."""
        httpd = self._httpd
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._connections and time.monotonic() < deadline:
                self._idle.wait(0.05)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without the API prefix."""
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client as base_url: ``http://127.0.0.1:PORT/v1`` (Gemini shape:
        ``…/v1beta/openai``; Azure shape: the resource endpoint ``http://127.0.0.1:PORT``)."""
        if self.shape == "gemini":
            return f"{self.url}{GEMINI_PREFIX}"
        if self.shape == "azure":
            return self.url
        return f"{self.url}/v1"

    # ---- provider shapes ---------------------------------------------------------------------------------

    def _reported_model(self, model: str, deployment: str | None = None) -> str:
        """The ``model`` an answer names: the snapshot mapped from the model (Azure: the deployment), else it."""
        asked = deployment or model
        return self.model_snapshots.get(asked, asked)

    def _wire_usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The plan's usage (OpenAI's form) as this shape reports it."""
        if self.shape in ("openai", "azure"):
            return usage
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
        if self.shape == "gemini":
            reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
            wire: dict[str, Any] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion - reasoning,  # the visible answer only
                "total_tokens": prompt + completion,  # thinking included
            }
            if reasoning:
                wire["completion_tokens_details"] = {"reasoning_tokens": reasoning}
            cached = usage["prompt_tokens_details"]["cached_tokens"]
            if cached:
                wire["prompt_tokens_details"] = {"cached_tokens": cached}
            return wire
        wire = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if self.shape == "vllm":
            wire["prompt_tokens_details"] = None
        return wire

    # ---- recording ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def responses(self) -> list[RecordedResponse]:
        """What was answered to each request, in the order the answers were decided (a copy)."""
        with self._lock:
            return list(self._responses)

    def reset(self) -> None:
        """Forget recorded requests and responses, and drop pending faults."""
        with self._lock:
            self._requests.clear()
            self._responses.clear()
            self._faults.clear()
            self.embedding_requests = 0

    def _record_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_response(self, response: RecordedResponse) -> None:
        with self._lock:
            self._responses.append(response)

    def _log_call(self, request_id: str, body: Any, record: RecordedResponse) -> None:
        """One JSON line per finished chat completion in ``log_path``: when it came in and when it ended, on this
        server's monotonic clock (the same clock as ``time.monotonic()`` in any process of the machine), so a
        benchmark in another process measures the LLM's side of its critical path from here."""
        if not self.log_path:
            return
        with self._lock:
            received = next((r for r in reversed(self._requests) if r.request_id == request_id), None)
        if received is None:
            return
        spec = ((body or {}).get("response_format") or {}).get("json_schema") or {}
        line = {
            "request_id": request_id,
            "received_at": received.received_at,
            "received_monotonic": received.received_monotonic,
            "first_content_at": record.content_sent_at[0] if record.content_sent_at else None,
            "completed_at": record.completed_at,
            "status": record.status,
            "schema": spec.get("name", ""),
            "stream": record.streamed,
        }
        with self._lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")

    def _last_response_for(self, request_id: str) -> RecordedResponse | None:
        with self._lock:
            for response in reversed(self._responses):
                if response.request_id == request_id:
                    return response
        return None

    @property
    def open_connections(self) -> int:
        """Connections whose handler has not finished (after ``stop()``: those it could not wake)."""
        with self._lock:
            return len(self._connections)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._idle:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
                self._idle.notify_all()

    # ---- faults ------------------------------------------------------------------------------------------

    def add_fault(self, kind: str, *, times: int = 1, match: Any = None, **options: Any) -> None:
        """Queue a fault for the next ``times`` chat-completion requests (after the faults already queued).

        ``match`` aims it at some requests only, whatever else is in flight: a string their JSON body must
        contain (e.g. a schema's name, or one persona's system prompt), or a predicate on the parsed body. A
        request takes the first queued fault that matches it; faults without ``match`` match every request.

        Kinds, and what an ``openai`` 3.52 client sees:

        * ``rate_limit`` (``retry_after=1``, ``message``): 429, ``Retry-After`` (seconds) and ``retry-after-ms``
          headers, error type ``rate_limit_error``, code ``rate_limit_exceeded`` -> ``openai.RateLimitError``.
        * ``server_error`` (``status=500``, ``message``): that status with an OpenAI error body, type
          ``server_error`` -> ``openai.InternalServerError`` for any 5xx.
        * ``hang`` (``seconds=30``): reads the request, sends nothing, and after ``seconds`` (or at ``stop()``)
          closes the connection -> ``openai.APITimeoutError`` when the client's timeout is shorter, else
          ``openai.APIConnectionError``. Other requests are served meanwhile. Its response record has
          ``client_disconnected=True`` when the client hung up first.
        * ``malformed_json``: non-stream: 200, ``application/json``, the body cut in half -> the SDK raises
          ``json.JSONDecodeError`` (not an ``openai`` error). Stream: after the first content delta, a
          ``data:`` line that is not JSON -> ``json.JSONDecodeError`` while iterating.
        * ``invalid_output`` (``content='{"unexpected": true}'``): 200, valid JSON text that does not match the
          requested schema; usage reported.
        * ``garbage_output`` (``content``): 200, text that is not JSON ("Sure! Here is the JSON you asked
          for: {name: ..."); usage reported.
        * ``truncated`` (``fraction=0.5``): 200, ``finish_reason "length"``, content cut to that fraction of its
          tokens (JSON is cut mid-way), ``completion_tokens`` = tokens sent.
        * ``stream_cut`` (``after_tokens`` = half): stream: that many content deltas, then the connection is
          closed mid-body (no finish_reason, usage or ``[DONE]``) -> ``openai.APIConnectionError`` while
          iterating. Non-stream: the body is cut half-way below its Content-Length -> ``APIConnectionError``.
        * ``no_usage``: a normal answer without ``usage`` (stream: no usage chunk, even with include_usage).
        * ``wrong_dimension`` (``dimension=17``): embeddings only: the last vector of the answer has that many
          numbers. A chat completion serves normally.

        On ``/v1/embeddings``: ``rate_limit``, ``server_error`` and ``hang`` as above; ``malformed_json`` sends half
        the body; ``stream_cut`` promises the whole body and hangs up half-way; ``no_usage`` leaves out ``usage``;
        the chat-only kinds (``invalid_output``, ``garbage_output``, ``truncated``) serve normally.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        unknown = set(options) - set(FAULT_KINDS[kind])
        if unknown:
            raise TypeError(f"fault {kind!r} takes no option(s) {', '.join(sorted(unknown))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        merged = {**FAULT_KINDS[kind], **options}
        with self._lock:
            self._faults.append(_Fault(kind, times, merged, match))

    @property
    def pending_faults(self) -> list[tuple[str, int]]:
        """(kind, requests left) for each queued fault."""
        with self._lock:
            return [(f.kind, f.remaining) for f in self._faults]

    def _take_fault(self, body: Any = None) -> _Fault | None:
        with self._lock:
            text = None
            for fault in self._faults:
                if fault.match is not None:
                    if callable(fault.match):
                        if not fault.match(body):
                            continue
                    else:
                        text = json.dumps(body) if text is None else text
                        if fault.match not in text:
                            continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
            return None

    # ---- answers -----------------------------------------------------------------------------------------

    def _plan(self, body: dict[str, Any], kind: str | None, options: dict[str, Any]) -> _Plan:
        seed = request_seed(body)
        response_format = body.get("response_format") or {}
        format_type = response_format.get("type")
        if format_type == "json_schema":
            spec = response_format["json_schema"]
            value = fake_instance(spec.get("schema") or {}, seed=seed, hint=spec.get("name", ""))
            content = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif format_type == "json_object":
            content = json.dumps(fake_instance(_JSON_OBJECT_SCHEMA, seed=seed), ensure_ascii=False)
        else:
            content = self._reply(body, seed)

        if kind == "invalid_output":
            content = options["content"]
        elif kind == "garbage_output":
            content = options["content"] or _garbage(content)

        tokens = _encode(content)
        finish_reason = "stop"
        # Ollama reads only max_tokens (its OpenAI-compatibility docs list no max_completion_tokens).
        limit = body.get("max_tokens")
        if self.shape != "ollama":
            limit = body.get("max_completion_tokens") or limit
        keep = None
        if kind == "truncated":
            keep = max(1, math.floor(len(tokens) * float(options["fraction"])))
            keep = min(keep, max(len(tokens) - 1, 1))
        if isinstance(limit, int) and limit > 0 and len(tokens) > limit:
            keep = limit if keep is None else min(keep, limit)
        if keep is not None:
            content = b"".join(_token_bytes(tokens[:keep])).decode("utf-8", errors="ignore")
            tokens = _encode(content)
            finish_reason = "length"

        prompt_tokens = count_prompt_tokens(body["messages"])
        completion_tokens = len(tokens) + self.reasoning_tokens
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt_tokens), "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return _Plan(content, tokens, finish_reason, usage)

    def _reply(self, body: dict[str, Any], seed: int) -> str:
        """A persona's answer of about ``completion_tokens`` tokens: whole sentences, as close as they get."""
        prompt = next(
            (_message_text(m) for m in reversed(body["messages"]) if isinstance(m, dict) and m.get("role") == "user"),
            "",
        )
        target = max(1, int(self.completion_tokens))
        sentences: list[str] = []
        used = 0
        for sentence in reply_sentences(seed=seed, prompt=prompt):
            cost = len(_encode(" " + sentence))
            if sentences and used + cost - target > target - used:  # closer to the target without it
                break
            sentences.append(sentence)
            used += cost
            if used >= target:
                break
        return " ".join(sentences)


_JSON_OBJECT_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative", "mixed"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "sentiment", "confidence"],
    "additionalProperties": False,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server", description="A fake OpenAI Chat Completions server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--tokens-per-second", type=float, default=0.0, help="0: as fast as possible")
    parser.add_argument("--completion-tokens", type=int, default=40, help="length of plain answers")
    parser.add_argument("--cached-tokens", type=int, default=0)
    parser.add_argument("--reasoning-tokens", type=int, default=0)
    parser.add_argument("--shape", choices=SHAPES, default="openai", help="answer as this kind of provider does")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    parser.add_argument("--log", default=None, help="append a JSON line per finished chat completion to this file")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        api_key=args.api_key,
        ttft=args.ttft,
        tokens_per_second=args.tokens_per_second,
        completion_tokens=args.completion_tokens,
        host=args.host,
        port=args.port,
        cached_tokens=args.cached_tokens,
        reasoning_tokens=args.reasoning_tokens,
        verbose=args.verbose,
        shape=args.shape,
        log_path=args.log,
    )
    with server:
        print(f"Fake OpenAI server on {server.base_url} (api key {args.api_key!r}); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
