"""The fake server in each provider's shape: the URLs, headers, usage and stream quirks that shape reproduces,
through the real openai SDK (AzureOpenAI for Azure). The default shape is covered by test_openai_server.py."""

import json

import httpx2
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "What would make you switch meal-kit services?"}]


def _stream(client, **options):
    """Every chunk of a streamed completion, as the JSON the server sent."""
    body = {"model": options.pop("model", "any-model"), "messages": MESSAGES, "stream": True, **options}
    stream = client.post("/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.Stream[object])
    with stream:
        return stream.response.headers, list(stream)


def test_model_snapshots_name_the_model_that_ran_and_others_are_echoed():
    with FakeOpenAIServer(model_snapshots={"gpt-5.4": "gpt-5.4-2026-03-05"}) as server:
        client = openai.OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        _, chunks = _stream(client, model="gpt-5.4")
        assert {chunk["model"] for chunk in chunks} == {"gpt-5.4-2026-03-05"}
        plain = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert plain.model == "gpt-4o-mini"
        embedded = client.embeddings.create(model="gpt-5.4", input=["hello"])
        assert embedded.model == "gpt-5.4-2026-03-05"


def test_gemini_shape_reports_thinking_beside_completion_tokens_with_the_finish_reason():
    with FakeOpenAIServer(api_key="gem-key", shape="gemini", reasoning_tokens=40) as server:
        assert server.base_url.endswith("/v1beta/openai")
        client = openai.OpenAI(api_key="gem-key", base_url=server.base_url, max_retries=0)
        headers, chunks = _stream(client, stream_options={"include_usage": True})
        assert "x-request-id" not in headers
        usage_chunks = [chunk for chunk in chunks if chunk.get("usage")]
        assert len(usage_chunks) == 1 and usage_chunks[0]["choices"][0]["finish_reason"] == "stop"
        usage = usage_chunks[0]["usage"]
        visible = server.responses[-1].content
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 40
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + 40
        assert usage["completion_tokens"] > 0 and visible
        # Not asked for usage: none sent.
        _, quiet = _stream(client)
        assert not any(chunk.get("usage") for chunk in quiet)
        # The OpenAI path is not Gemini's.
        wrong = openai.OpenAI(api_key="gem-key", base_url=server.url + "/v1", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            wrong.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)


def test_azure_shape_serves_deployments_with_an_api_key_header_and_an_api_version():
    snapshots = {"cohorta-main": "gpt-4o-2024-08-06"}
    with FakeOpenAIServer(api_key="az-key", shape="azure", model_snapshots=snapshots) as server:
        client = openai.AzureOpenAI(
            api_key="az-key", azure_endpoint=server.base_url, api_version="2024-10-21", max_retries=0
        )
        headers, chunks = _stream(client, model="cohorta-main", stream_options={"include_usage": True})
        request = server.requests[-1]
        assert request.path == "/openai/deployments/cohorta-main/chat/completions"
        assert request.headers["api-key"] == "az-key" and "authorization" not in request.headers
        assert headers["apim-request-id"] and headers["x-request-id"]
        first = chunks[0]
        assert first["choices"] == [] and first["model"] == "" and first["prompt_filter_results"]
        assert {chunk["model"] for chunk in chunks[1:]} == {"gpt-4o-2024-08-06"}
        assert chunks[-1]["usage"]["total_tokens"] > 0
        vectors = client.embeddings.create(model="cohorta-embed", input=["hello"])
        assert server.requests[-1].path == "/openai/deployments/cohorta-embed/embeddings"
        assert len(vectors.data) == 1
        # A Bearer token is not Azure's header, and without api-version there is no such resource.
        bearer = openai.OpenAI(
            api_key="az-key", base_url=f"{server.url}/openai/deployments/cohorta-main", max_retries=0
        )
        with pytest.raises(openai.APIStatusError) as refused:
            bearer.chat.completions.create(model="cohorta-main", messages=MESSAGES)
        assert refused.value.status_code in (401, 404)
        raw = httpx2.post(
            f"{server.url}/openai/deployments/cohorta-main/chat/completions",
            headers={"api-key": "az-key"},
            json={"model": "cohorta-main", "messages": MESSAGES},
        )
        assert raw.status_code == 404


def test_ollama_shape_takes_any_key_never_sends_stream_usage_and_reads_only_max_tokens():
    with FakeOpenAIServer(api_key="", shape="ollama") as server:
        client = openai.OpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        headers, chunks = _stream(client, stream_options={"include_usage": True})
        assert "x-request-id" not in headers
        assert not any(chunk.get("usage") for chunk in chunks)
        assert server.responses[-1].usage is None
        _, ignored = _stream(client, max_completion_tokens=3)
        assert ignored[-1]["choices"][0]["finish_reason"] == "stop"
        _, limited = _stream(client, max_tokens=3)
        assert limited[-1]["choices"][0]["finish_reason"] == "length"


def test_vllm_shape_without_a_key_reports_usage_without_details():
    with FakeOpenAIServer(api_key="", shape="vllm", reasoning_tokens=5) as server:
        client = openai.OpenAI(api_key="unused", base_url=server.base_url, max_retries=0)
        _, chunks = _stream(client, stream_options={"include_usage": True})
        usage = chunks[-1]["usage"]
        assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}
        assert usage["prompt_tokens_details"] is None
        assert server.responses[-1].usage == usage


def test_a_keyed_vllm_checks_the_bearer_token():
    with FakeOpenAIServer(api_key="vllm-key", shape="vllm") as server:
        client = openai.OpenAI(api_key="wrong", base_url=server.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="m", messages=MESSAGES)
        assert "wrong" not in json.dumps(refused.value.body)


def test_an_unknown_shape_is_refused():
    with pytest.raises(ValueError, match="unknown shape"):
        FakeOpenAIServer(shape="anthropic")
