"""The fake OpenAI server, driven by the real ``openai`` SDK (3.52, httpx2): protocol, usage, timing and faults.

What the SDK does with each fault is asserted here as it actually behaves, so these tests double as the
reference for how Cohorta's gateway sees provider failures.
"""

from __future__ import annotations

import itertools
import json
import logging

import jsonschema
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from llm.embedders import hashing_vector
from tests.fakes.fixtures import fake_openai  # noqa: F401 - the fixture under test
from tests.fakes.openai_server import FAULT_KINDS, FakeOpenAIServer, count_prompt_tokens, count_tokens
from tests.integration.helpers import wait_until

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You are a focus-group participant."},
    {"role": "user", "content": "How do you feel about grocery delivery subscriptions?"},
]
PERSONA_SCHEMA = {
    "type": "object",
    "properties": {
        "personas": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer", "minimum": 18, "maximum": 90},
                    "gender": {"type": "string", "enum": ["male", "female", "non-binary"]},
                    "location": {"type": "string"},
                    "occupation": {"type": "string"},
                    "quote": {"type": ["string", "null"]},
                },
                "required": ["name", "age", "gender", "location", "occupation", "quote"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["personas"],
    "additionalProperties": False,
}
# Durations are read on the server's clock, which a loaded test machine cannot skew (a client that is
# descheduled reads the first token late and the rest at once). A timed wait may wake a hair early.
CLOCK_SLACK = 0.005
JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "persona_list", "schema": PERSONA_SCHEMA, "strict": True},
}


@pytest.fixture(scope="module")
def shared_server():
    with FakeOpenAIServer(api_key="test-key") as srv:
        yield srv


@pytest.fixture
def server(shared_server):
    """The module's server, reset to its defaults (one server per module keeps this file fast)."""
    defaults = {"api_key": "test-key", "ttft": 0.0, "tokens_per_second": 0.0, "completion_tokens": 40}
    defaults |= {"cached_tokens": 0, "reasoning_tokens": 0}
    for name, value in defaults.items():
        setattr(shared_server, name, value)
    shared_server.reset()
    yield shared_server
    shared_server.reset()


@pytest.fixture(scope="module")
def shared_client(shared_server):
    return OpenAI(api_key="test-key", base_url=shared_server.base_url, max_retries=0, timeout=5)


@pytest.fixture
def client(server, shared_client):
    return shared_client


def usage_dict(usage) -> dict:
    """The SDK's usage as the server sent it (the SDK model adds fields it did not get, as None)."""
    return usage.model_dump(exclude_unset=True)


def collect(stream):
    """(content, chunks) of a stream, read to the end."""
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return content, chunks


# ---- protocol -------------------------------------------------------------------------------------------------


def test_non_stream_completion_and_usage_are_what_the_server_recorded(server, client):
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == MODEL
    choice = response.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason == "stop"
    content = choice.message.content
    assert content and len(content.split()) >= 10
    assert "grocery delivery subscriptions" in content.lower()  # picks up the question

    recorded = server.responses[-1]
    assert recorded.status == 200 and not recorded.streamed and recorded.fault is None
    assert recorded.content == content
    assert usage_dict(response.usage) == recorded.usage
    assert response.usage.prompt_tokens == count_prompt_tokens(MESSAGES)
    assert response.usage.completion_tokens == count_tokens(content)
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert response.usage.prompt_tokens_details.cached_tokens == 0
    assert response.usage.completion_tokens_details.reasoning_tokens == 0
    assert 28 <= response.usage.completion_tokens <= 52  # roughly completion_tokens=40, in whole sentences
    assert response._request_id and response._request_id.startswith("req_")

    request = server.requests[-1]
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.body["messages"] == MESSAGES and request.headers["authorization"] == "Bearer test-key"


def test_same_request_same_answer_streamed_or_not(server, client):
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    streamed, _ = collect(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    other = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Something else?"}])
    assert plain == streamed
    assert other.choices[0].message.content != plain


def test_settings_change_on_the_live_server(server, client):
    server.completion_tokens = 120
    server.cached_tokens = 8
    server.reasoning_tokens = 5
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    content = response.choices[0].message.content
    assert response.usage.completion_tokens == count_tokens(content) + 5  # reasoning counts as completion
    assert count_tokens(content) >= 100
    assert response.usage.prompt_tokens_details.cached_tokens == 8
    assert response.usage.completion_tokens_details.reasoning_tokens == 5


def test_streaming_with_usage(server, client):
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    content, chunks = collect(stream)

    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 20  # one token per delta
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])

    recorded = server.responses[-1]
    assert recorded.streamed and recorded.content == content
    assert usage_dict(chunks[-1].usage) == recorded.usage
    assert chunks[-1].usage.completion_tokens == count_tokens(content)


def test_streaming_without_include_usage_sends_no_usage(server, client):
    _, chunks = collect(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert server.responses[-1].usage is None


def test_streaming_respects_ttft_and_tokens_per_second(server, client):
    server.ttft = 0.3
    server.tokens_per_second = 400
    server.completion_tokens = 40
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    tokens = sum(1 for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
    received = server.requests[-1].received_monotonic
    sent = server.responses[-1].content_sent_at
    assert tokens > 1 and len(sent) == tokens
    # Token i goes out no sooner than ttft + i / tokens_per_second after the request arrived.
    early = [(i, round(at - received, 4)) for i, at in enumerate(sent) if at - received < 0.3 + i / 400 - CLOCK_SLACK]
    assert not early, early


def test_non_stream_waits_for_the_whole_generation(server, client):
    server.ttft = 0.05
    server.tokens_per_second = 1000
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    [sent] = server.responses[-1].content_sent_at
    waited = sent - server.requests[-1].received_monotonic
    assert waited >= 0.05 + response.usage.completion_tokens / 1000 - CLOCK_SLACK


def test_json_schema_output_validates(server, client):
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT)
    data = json.loads(response.choices[0].message.content)
    jsonschema.validate(data, PERSONA_SCHEMA)
    assert usage_dict(response.usage) == server.responses[-1].usage
    # and the same through a stream
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT, stream=True
    )
    content, _ = collect(stream)
    assert json.loads(content) == data


def test_sdk_parse_with_a_pydantic_model(server, client):
    class Persona(BaseModel):
        name: str
        age: int
        occupation: str
        quote: str | None

    class PersonaList(BaseModel):
        personas: list[Persona]

    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=PersonaList)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, PersonaList) and parsed.personas
    assert all(" " in p.name and 18 <= p.age <= 80 for p in parsed.personas)
    sent = server.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True


def test_json_object_mode(server, client):
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format={"type": "json_object"})
    data = json.loads(response.choices[0].message.content)
    assert isinstance(data, dict) and data


def test_max_completion_tokens_cuts_with_finish_reason_length(server, client):
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=7)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens <= 7
    assert response.usage.completion_tokens == count_tokens(response.choices[0].message.content)


def test_models(server, client):
    models = client.models.list()
    assert MODEL in [m.id for m in models.data]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_bad_requests_get_400(server, client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[])


async def test_async_client_streams(server):
    client = AsyncOpenAI(api_key="test-key", base_url=server.base_url, max_retries=0, timeout=5)
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert usage_dict(chunks[-1].usage) == server.responses[-1].usage
    await client.close()


def test_fake_openai_fixture(fake_openai):  # noqa: F811 - the imported fixture
    assert fake_openai.base_url.startswith("http://127.0.0.1:") and fake_openai.base_url.endswith("/v1")
    assert fake_openai.api_key == "test-key" and fake_openai.ttft == 0
    client = OpenAI(api_key="test-key", base_url=fake_openai.base_url, max_retries=0, timeout=5)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).usage.total_tokens > 0


# ---- authentication -------------------------------------------------------------------------------------------


def test_wrong_api_key_is_401_without_echoing_the_key(server):
    wrong = "sk-wrong-key-1234567890"
    client = OpenAI(api_key=wrong, base_url=server.base_url, max_retries=0, timeout=5)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    error = caught.value
    assert error.status_code == 401
    assert error.code == "invalid_api_key" and error.type == "invalid_request_error"
    assert wrong not in str(error) and wrong not in error.response.text
    assert "wrong-key" not in error.message
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert server.responses[-1].status == 401


def test_missing_api_key_is_401(server):
    import httpx2

    response = httpx2.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_api_key_can_be_rotated_on_the_live_server(server, client):
    server.api_key = "rotated"
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


# ---- faults ---------------------------------------------------------------------------------------------------


def test_unknown_fault_kind_or_option_is_refused(server):
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.add_fault("meltdown")
    with pytest.raises(TypeError):
        server.add_fault("hang", minutes=1)
    assert set(FAULT_KINDS) == {
        "rate_limit",
        "server_error",
        "hang",
        "malformed_json",
        "invalid_output",
        "garbage_output",
        "truncated",
        "stream_cut",
        "no_usage",
        "wrong_dimension",
    }


def test_faults_are_fifo_and_apply_times_requests(server, client):
    server.add_fault("server_error", times=2)
    server.add_fault("rate_limit")
    assert server.pending_faults == [("server_error", 2), ("rate_limit", 1)]
    for expected in (openai.InternalServerError, openai.InternalServerError, openai.RateLimitError):
        with pytest.raises(expected):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    assert [r.fault for r in server.responses] == ["server_error", "server_error", "rate_limit", None]
    assert server.pending_faults == []


def test_models_and_rejected_keys_do_not_take_faults(server, client):
    server.add_fault("server_error")
    client.models.list()
    wrong = OpenAI(api_key="nope", base_url=server.base_url, max_retries=0, timeout=5)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert server.pending_faults == [("server_error", 1)]


def test_reset_clears_records_and_faults(server, client):
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    server.add_fault("hang")
    server.reset()
    assert server.requests == [] and server.responses == [] and server.pending_faults == []


def test_rate_limit(server, client):
    server.add_fault("rate_limit", retry_after=7)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.response.headers["retry-after-ms"] == "7000"
    assert error.type == "rate_limit_error" and error.code == "rate_limit_exceeded"
    assert server.responses[-1].status == 429 and server.responses[-1].usage is None


def test_sdk_retries_honour_retry_after(server, caplog):
    """With retries on, the SDK waits what the server says (retry-after-ms first) and tries again."""
    server.add_fault("rate_limit", times=2, retry_after=0.05)
    client = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=2, timeout=5)
    with caplog.at_level(logging.INFO, logger="openai"):
        response = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert response.choices[0].message.content
    # The waits the SDK chose (its own exponential backoff would be 0.375-0.5 s, then 0.75-1 s)...
    waits = [r.args[0] for r in caplog.records if r.msg.startswith("Retrying request in")]
    assert waits == [0.05, 0.05]
    # ...and made: each retry reached the server at least that long after the attempt before it.
    arrivals = [r.received_monotonic for r in server.requests]
    assert all(later - earlier >= 0.05 - CLOCK_SLACK for earlier, later in itertools.pairwise(arrivals)), arrivals
    assert [r.status for r in server.responses] == [429, 429, 200]
    assert [r.headers.get("x-stainless-retry-count") for r in server.requests] == ["0", "1", "2"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error(server, client, status):
    server.add_fault("server_error", status=status)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == status
    assert server.responses[-1].status == status


def test_hang_times_out_and_the_server_keeps_serving():
    server = FakeOpenAIServer().start()  # its own server: this test stops it with a request still hung
    try:
        server.add_fault("hang", seconds=30)
        client = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        assert [r.fault for r in server.responses] == ["hang", None]
        # Nothing was sent, and it was the client's 0.3 s timeout that ended it, not the 30 s hang.
        assert server.responses[0].status is None
        wait_until(lambda: server.responses[0].client_disconnected, 10, "the server to see the client hang up")
        server.stop()  # the hung handler is still waiting: stop must wake it, not wait its own timeout out
        assert server.open_connections == 0
    finally:
        server.stop()


def test_short_hang_then_hang_up_is_a_connection_error(server):
    server.add_fault("hang", seconds=0.1)
    client = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0, timeout=5)
    with pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert not server.responses[0].client_disconnected  # the server hung up first


def test_malformed_json_body_raises_json_decode_error(server, client):
    """The SDK does not wrap a 200 whose JSON body does not parse: json.JSONDecodeError escapes as is."""
    server.add_fault("malformed_json")
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert server.responses[-1].status == 200 and server.responses[-1].usage is None


def test_malformed_json_in_a_stream_raises_json_decode_error_mid_stream(server, client):
    server.add_fault("malformed_json")
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    received = []
    with pytest.raises(json.JSONDecodeError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2  # the role chunk and one content delta, then the bad line
    assert all(c.usage is None for c in received)


def test_invalid_output_is_json_that_breaks_the_schema(server, client):
    server.add_fault("invalid_output")
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT)
    data = json.loads(response.choices[0].message.content)
    assert data == {"unexpected": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, PERSONA_SCHEMA)
    assert response.choices[0].finish_reason == "stop"
    assert usage_dict(response.usage) == server.responses[-1].usage


def test_invalid_output_makes_sdk_parse_raise_validation_error(server, client):
    class Persona(BaseModel):
        name: str
        age: int

    server.add_fault("invalid_output")
    import pydantic

    with pytest.raises(pydantic.ValidationError):
        client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Persona)


def test_garbage_output_is_not_json(server, client):
    server.add_fault("garbage_output")
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT)
    content = response.choices[0].message.content
    assert content.startswith("Sure! Here is the JSON you asked for:")
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert response.usage.completion_tokens == count_tokens(content)


def test_truncated(server, client):
    server.add_fault("truncated")
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT)
    assert response.choices[0].finish_reason == "length"
    content = response.choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    full = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT)
    full_content = full.choices[0].message.content
    assert full_content.startswith(content) and len(content) < len(full_content)
    assert response.usage.completion_tokens == count_tokens(content) < full.usage.completion_tokens
    assert usage_dict(response.usage) == server.responses[0].usage


def test_truncated_stream(server, client):
    server.add_fault("truncated")
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    content, chunks = collect(stream)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == count_tokens(content)


def test_stream_cut_raises_connection_error_without_usage(server, client):
    """The SDK sees the incomplete chunked body: APIConnectionError while iterating; no finish, no usage."""
    server.add_fault("stream_cut", after_tokens=5)
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    received = []
    with pytest.raises(openai.APIConnectionError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert all(c.usage is None for c in received)
    assert not any(c.choices and c.choices[0].finish_reason for c in received)
    content = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert len(received) == 1 + 5
    recorded = server.responses[-1]
    assert recorded.content == content and recorded.usage is None and recorded.finish_reason is None
    # the next request is fine
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content


def test_stream_cut_on_a_plain_request_is_a_connection_error(server, client):
    server.add_fault("stream_cut")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_no_usage(server, client):
    server.add_fault("no_usage", times=2)
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert response.usage is None and response.choices[0].message.content
    _, chunks = collect(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [r.usage for r in server.responses] == [None, None]


def test_concurrent_requests_do_not_block_each_other(server):
    """A slow stream and quick requests run side by side (the server is threaded)."""
    import threading

    server.add_fault("hang", seconds=30)
    slow = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0, timeout=0.3)
    errors = []
    thread = threading.Thread(target=lambda: _expect_timeout(slow, errors))
    thread.start()
    wait_until(lambda: server.responses, 10, "the slow request to hang")
    assert [r.fault for r in server.responses] == ["hang"]
    # A server that served one request at a time would leave these behind the 30 s hang: they would time out.
    client = OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0, timeout=5)
    for _ in range(3):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    thread.join()
    assert errors == [openai.APITimeoutError]


def _expect_timeout(client, errors):
    try:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    except openai.APIError as exc:
        errors.append(type(exc))


# ---- embeddings ------------------------------------------------------------------------------------------------


def test_embeddings_through_the_sdk_in_both_encodings(server, client):
    texts = ["I would buy it", "Not for me"]
    # The SDK asks for base64 by default and decodes it itself: the wire shape is the real one.
    result = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 1536
    assert result.data[1].embedding == pytest.approx(hashing_vector(texts[1], 1536), abs=1e-6)
    assert result.usage.prompt_tokens == result.usage.total_tokens == sum(count_tokens(t) for t in texts)
    floats = client.embeddings.create(model="m", input="one text", encoding_format="float", dimensions=8)
    assert floats.data[0].embedding == hashing_vector("one text", 8)
    assert server.embedding_requests == 2


def test_embeddings_bad_requests_get_400_and_take_no_fault(server, client):
    server.add_fault("server_error")
    for body in ({"model": "m", "input": []}, {"model": "m", "input": [""]}, {"model": "m", "input": [1]}):
        with pytest.raises(openai.BadRequestError):
            client.post("/embeddings", body=body, cast_to=object)
    assert server.embedding_requests == 0 and server.pending_faults == [("server_error", 1)]


def test_embeddings_wrong_dimension_shortens_the_last_vector(server, client):
    server.add_fault("wrong_dimension", dimension=5)
    result = client.embeddings.create(model="m", input=["a", "b", "c"], encoding_format="float")
    assert [len(d.embedding) for d in result.data] == [1536, 1536, 5]
