"""Exact replay through the gateway against the fake OpenAI server: a live run keeps its validated answers,
a replay gives them back byte for byte with no request reaching the provider, and everything that should
miss does."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cohorta.core.models import get_app_settings
from llm import errors
from llm.gateway import complete, embed
from llm.models import CachedResponse, RunCall, RunRecord
from llm.prompts import render_prompt
from llm.replay import Kept, cache_expire, cache_summary, keep, keep_vector, llm_run, note, replay_plan, replay_prepare
from llm.tasks import expire_cache
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_llm(fake_openai, settings):
    """The fake provider, unpriced: what replay keeps does not depend on prices."""
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.LLM_SIMULATED = False
    return fake_openai


SCHEMA = {
    "type": "object",
    "properties": {"choice": {"type": "string", "enum": ["yes", "no"]}, "reason": {"type": "string"}},
    "required": ["choice", "reason"],
    "additionalProperties": False,
}


def _messages(question: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are Priya, 34, a nurse in Leeds."},
        {"role": "user", "content": question},
    ]


def _study(owner) -> list:
    """A little run: a structured answer, the same plain request twice (two draws), and embeddings."""
    out = []
    render_prompt("llm:healthcheck", {"name": "Priya"})
    out.append(complete(feature="persona_response", messages=_messages("Would you buy it?"), schema=SCHEMA, user=owner))
    for _ in range(2):
        out.append(complete(feature="persona_response", messages=_messages("Tell me about dinner."), user=owner))
    out.append(embed(feature="survey_rating", texts=["I would buy it", "Not for me"], user=owner))
    return [(r.text, r.data) if hasattr(r, "text") else r for r in out]


def _requests(server) -> int:
    return len(server.requests)


def test_a_replay_gives_the_same_bytes_with_no_provider_request(fake_llm, owner, settings):
    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "hashing"
    with llm_run("test:original"):
        original = _study(owner)
    calls = _requests(fake_llm)
    assert calls == 4  # three completions and one embeddings batch
    assert CachedResponse.objects.count() == 5  # each embedded text is its own entry
    # The same plain request asked twice is two draws, two entries: sampling again never gets the old answer.
    assert sorted(CachedResponse.objects.filter(feature="persona_response").values_list("draw", flat=True)) == [0, 0, 1]

    replay_prepare(original_scope="test:original", scope="test:replay", allow_live=False)
    with llm_run("test:replay"):
        replayed = _study(owner)

    assert replayed == original
    assert _requests(fake_llm) == calls  # the provider received nothing
    cached = UsageEvent.objects.filter(cached=True)
    assert cached.count() == 4  # one per call, as live
    assert {event.cost_usd for event in cached} == {Decimal(0)}
    assert RunCall.objects.filter(run__scope="test:replay", from_cache=True).count() == 5
    summary = cache_summary()
    assert (summary.hits, summary.misses, summary.entries) == (5, 0, 5)


def test_a_call_notes_its_prompts_under_one_lock(fake_llm, owner):
    with llm_run("test:prompts") as run:
        render_prompt("llm:healthcheck", {"name": "Priya"})
        render_prompt("focusgroups:live_themes", {})
        with CaptureQueriesContext(connection) as queries:
            complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner)
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] and "llm_runrecord" in q["sql"]]
    assert len(locks) == 2  # the call's two prompts together, then the model it ran
    assert set(RunRecord.objects.get(pk=run.pk).methods["prompts"]) == {
        "llm:healthcheck",
        "focusgroups:live_themes",
    }


def test_methods_name_the_snapshot_the_prompts_and_the_embedding_model(fake_llm, owner, settings):
    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "hashing"
    with llm_run("test:methods"):
        _study(owner)
    note("test:methods", "seeds", "respondents", 42)
    methods = RunRecord.objects.get(scope="test:methods").methods
    main = methods["models"][settings.LLM_FEATURES["persona_response"]]
    assert main["model"] == settings.LLM_MODELS[settings.LLM_FEATURES["persona_response"]]
    assert main["snapshots"]  # what the provider said it ran
    assert set(methods["prompts"]) == {"llm:healthcheck"}
    assert len(methods["prompts"]["llm:healthcheck"]) == 16
    assert methods["embedding"]["model"]
    assert methods["seeds"] == {"respondents": 42}


def test_a_whole_section_noted_again_by_another_process_is_kept(owner, monkeypatch):
    """Survey respondents on several workers each note the anchor set's version (a string, a whole
    section): the second process to note it, whose memo is empty, found a string where it expected a
    section of keys and crashed the respondent."""
    note("test:anchors", "anchor_set", "", "v3")
    monkeypatch.setattr("llm.replay._noted", set())  # another worker process: nothing noted yet
    note("test:anchors", "anchor_set", "", "v3")
    note("test:anchors", "seeds", "order", 7)
    assert RunRecord.objects.get(scope="test:anchors").methods == {"anchor_set": "v3", "seeds": {"order": 7}}


def test_a_changed_prompt_misses_and_never_calls_the_provider(fake_llm, owner):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner)
    calls = _requests(fake_llm)
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=False)
    with llm_run("test:b"), pytest.raises(errors.LLMReplayMiss):
        complete(feature="persona_response", messages=_messages("Would you buy it today?"), user=owner)
    assert _requests(fake_llm) == calls
    assert cache_summary().misses == 1


def test_a_changed_model_misses(fake_llm, owner, settings):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner)
    alias = settings.LLM_FEATURES["persona_response"]
    settings.LLM_MODELS = {**settings.LLM_MODELS, alias: "gpt-4.1"}
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=False)
    with llm_run("test:b"), pytest.raises(errors.LLMReplayMiss):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner)


def test_a_replay_allowed_to_go_live_asks_only_for_what_is_missing(fake_llm, owner):
    with llm_run("test:a"):
        first = complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner).text
    calls = _requests(fake_llm)
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=True)
    with llm_run("test:b"):
        again = complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner).text
        complete(feature="persona_response", messages=_messages("And the price?"), user=owner)
    assert again == first
    assert _requests(fake_llm) == calls + 1  # only the new question went out


def test_an_entry_that_no_longer_validates_is_discarded_not_replayed(fake_llm, owner):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), schema=SCHEMA, user=owner)
    CachedResponse.objects.update(text='{"choice": "maybe"}')  # what a schema change would leave behind
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=False)
    with llm_run("test:b"), pytest.raises(errors.LLMReplayMiss):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), schema=SCHEMA, user=owner)
    assert not CachedResponse.objects.exists()
    assert replay_plan("test:a").missing == 1


def test_errors_and_invalid_answers_are_never_kept(fake_llm, owner, settings):
    settings.LLM_MAX_RETRIES = 0
    fake_llm.add_fault("server_error", times=1)
    with llm_run("test:a"), pytest.raises(errors.LLMUnavailable):
        complete(feature="persona_response", messages=_messages("Hello?"), user=owner)
    fake_llm.add_fault("invalid_output", times=2)
    with llm_run("test:a"), pytest.raises(errors.LLMInvalidOutput):
        complete(feature="persona_response", messages=_messages("Would you buy it?"), schema=SCHEMA, user=owner)
    assert not CachedResponse.objects.exists()
    assert replay_plan("test:a").calls == 0


def test_embeddings_replay_whatever_the_batches(fake_llm, owner, settings):
    """Survey mode embeds a survey's anchors once per process: a replay may send other batches."""
    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "hashing"
    with llm_run("test:a"):
        first = embed(feature="survey_rating", texts=["yes", "no"], user=owner)
        second = embed(feature="survey_rating", texts=["maybe"], user=owner)
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=False)
    with llm_run("test:b"):
        assert embed(feature="survey_rating", texts=["maybe", "yes", "no"], user=owner) == [*second, *first]
        with pytest.raises(errors.LLMReplayMiss, match="1 embedding"):
            embed(feature="survey_rating", texts=["yes", "never"], user=owner)


def test_calls_outside_a_run_are_not_kept(fake_llm, owner):
    complete(feature="persona_response", messages=_messages("Would you buy it?"), user=owner)
    assert not CachedResponse.objects.exists()


def test_expired_answers_are_counted_as_missing_before_a_replay(fake_llm, owner):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("One?"), user=owner)
        complete(feature="persona_response", messages=_messages("Two?"), user=owner)
    CachedResponse.objects.filter(feature="persona_response").update(created_at=timezone.now() - timedelta(days=100))
    complete_plan = replay_plan("test:a")
    assert (complete_plan.calls, complete_plan.missing) == (2, 0)
    assert cache_expire(days=90) == 2
    plan = replay_plan("test:a")
    assert (plan.calls, plan.missing, plan.complete) == (2, 2, False)
    assert plan.features == {"persona_response": 2}


def test_calls_naming_a_focus_group_belong_to_its_run(fake_llm, owner):
    complete(feature="persona_response", messages=_messages("Hi?"), user=owner, focus_group_id=7)
    assert RunCall.objects.get().run.scope == "focusgroup:7"


def test_the_admin_shows_the_cache_size_hit_rate_and_expiry(fake_llm, owner, client, staff_user):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("One?"), user=owner)
    replay_prepare(original_scope="test:a", scope="test:b", allow_live=False)
    with llm_run("test:b"):
        complete(feature="persona_response", messages=_messages("One?"), user=owner)
        with pytest.raises(errors.LLMReplayMiss):
            complete(feature="persona_response", messages=_messages("Two?"), user=owner)
    client.force_login(staff_user)
    page = client.get("/admin/llm/cachedresponse/").content.decode()
    assert "1</strong> cached answer" in page and "<strong>50.0%</strong> (1 found, 1 missing)" in page
    assert "kept for 90 days" in page
    record = RunRecord.objects.get(scope="test:b")
    detail = client.get(f"/admin/llm/runrecord/{record.pk}/change/").content.decode()
    assert "1 of 1 answers" in detail


def test_the_nightly_expiry_uses_the_admin_setting(fake_llm, owner):
    with llm_run("test:a"):
        complete(feature="persona_response", messages=_messages("One?"), user=owner)
    CachedResponse.objects.update(created_at=timezone.now() - timedelta(days=11))
    app = get_app_settings()
    app.llm_cache_days = 30
    app.save()
    assert expire_cache() == 0
    app.llm_cache_days = 10
    app.save()
    assert expire_cache() == 1 and not CachedResponse.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_many_processes_keeping_the_same_request_at_once_all_succeed():
    """A survey's respondents embed the same anchor sentences at the same moment: every one is kept and
    noted, none fails on a numbering clash."""
    run = RunRecord.objects.create(scope="test:race")
    start = threading.Barrier(12)
    failures: list[BaseException] = []

    def one(index: int) -> None:
        try:
            start.wait()
            keep_vector(run, "anchor-hash", [0.5, 0.25], feature="survey_rating", provider="fake", model="m")
            keep(
                run,
                "answer-hash",
                Kept(kind="completion", feature="f", provider="p", model="m", snapshot="s", text="t"),
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(RunCall.objects.filter(request_hash="anchor-hash").values_list("occurrence", flat=True)) == list(
        range(12)
    )
    assert sorted(RunCall.objects.filter(request_hash="answer-hash").values_list("occurrence", flat=True)) == list(
        range(12)
    )
    assert CachedResponse.objects.filter(request_hash="anchor-hash").count() == 1  # a vector is kept once
    assert len(set(CachedResponse.objects.filter(request_hash="answer-hash").values_list("draw", flat=True))) == 12


def test_keeping_a_request_seen_before_is_one_statement_per_row():
    """A repeated request (a survey asking everyone the same question) takes its next numbers without
    counting first or failing an INSERT under a savepoint: one statement for the draw, one for the ledger."""
    run = RunRecord.objects.create(scope="test:numbering")
    kept = Kept(kind="completion", feature="f", provider="p", model="m", snapshot="s", text="same answer")
    keep(run, "repeated-hash", kept)
    with CaptureQueriesContext(connection) as captured:
        entry = keep(run, "repeated-hash", kept)
    statements = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    assert statements == ["INSERT", "INSERT"], captured.captured_queries
    assert entry.draw == 1 and CachedResponse.objects.get(pk=entry.pk).text == "same answer"
    assert list(RunCall.objects.filter(run=run).order_by("occurrence").values_list("occurrence", "entry__draw")) == [
        (0, 0),
        (1, 1),
    ]
