"""Several providers at once: the environment names providers and routes each alias to one; the gateway calls
each alias's provider in that provider's shape (the fake server in Gemini, Azure, vLLM and Ollama form), records
the model the provider says it ran, and one provider down leaves the others working."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from llm import errors
from llm.config import DEFAULT_BASE_URLS, ProviderConfig, llm_config_from_env, split_model
from llm.gateway import complete, embed, get_provider
from llm.simulator import SimulatedProvider
from tests.fakes.openai_server import FakeOpenAIServer, count_tokens
from usage.models import UsageEvent, UsageSource, UsageStatus

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    {"role": "system", "content": "You are Priya, 34, a nurse in Leeds who cooks on weeknights."},
    {"role": "user", "content": "What would make you switch to a new meal-kit service?"},
]


def _config(env: dict[str, str], *, main="gpt-5.4", mini="gpt-5.4-mini", embedding="text-embedding-3-small", **kw):
    """llm_config_from_env as the settings call it, from a plain dict standing for the environment."""
    options = {
        "names": [n for n in env.get("LLM_PROVIDERS", "").split(",") if n],
        "default_provider": env.get("LLM_PROVIDER_NAME", "openai"),
        "models": {"main": main, "mini": mini},
        "embedding_models": {"embedding": embedding},
        "value": lambda name: env.get(name, ""),
        "secret": lambda name: env.get(name, ""),
        "openai_api_key": env.get("OPENAI_API_KEY", ""),
        "openai_base_url": env.get("OPENAI_BASE_URL", ""),
        "production": False,
    }
    return llm_config_from_env(**{**options, **kw})


# --- configuration ---------------------------------------------------------------------------------------------


def test_nothing_set_is_one_default_provider_and_the_simulator():
    config = _config({})
    assert list(config.providers) == ["openai"] and config.simulated and not config.warnings
    assert config.alias_providers == {"main": "openai", "mini": "openai", "embedding": "openai"}
    assert config.models == {"main": "gpt-5.4", "mini": "gpt-5.4-mini"}


def test_the_single_provider_variables_still_configure_the_default_provider():
    config = _config({"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "http://proxy/v1", "LLM_PROVIDER_NAME": "azure"})
    default = config.providers["azure"]
    # Renaming alone does not change how it is called: still an OpenAI-style endpoint with a Bearer key.
    assert (default.kind, default.api_key, default.base_url, default.uses_openai_env) == (
        "openai",
        "sk-1",
        "http://proxy/v1",
        True,
    )
    assert not config.simulated and config.alias_providers["main"] == "azure"


def test_aliases_name_their_provider_and_model_tags_keep_their_colons():
    env = {"OPENAI_API_KEY": "sk-1", "LLM_PROVIDERS": "gemini,ollama", "LLM_PROVIDER_GEMINI_API_KEY": "g-1"}
    config = _config(env, main="gemini:gemini-2.5-flash", mini="ollama:llama3.2:3b", embedding="llama3.2:3b")
    assert config.alias_providers == {"main": "gemini", "mini": "ollama", "embedding": "openai"}
    assert config.models == {"main": "gemini-2.5-flash", "mini": "llama3.2:3b"}
    assert config.embedding_models == {"embedding": "llama3.2:3b"}  # "llama3.2" is no provider: all model
    assert config.providers["gemini"].base_url == DEFAULT_BASE_URLS["gemini"]
    ollama = config.providers["ollama"]
    assert (ollama.kind, ollama.base_url, ollama.api_key, ollama.usable) == (
        "ollama",
        DEFAULT_BASE_URLS["ollama"],
        "",
        True,
    )
    assert split_model("openai:gpt-5.4", config.providers, "openai") == ("openai", "gpt-5.4")


def test_a_named_provider_takes_its_kind_from_its_variables():
    env = {"LLM_PROVIDERS": "work", "LLM_PROVIDER_WORK_KIND": "azure", "LLM_PROVIDER_WORK_API_KEY": "k"}
    with pytest.raises(ImproperlyConfigured, match="LLM_PROVIDER_WORK_BASE_URL is required"):
        _config(env)
    env["LLM_PROVIDER_WORK_BASE_URL"] = "https://res.openai.azure.com"
    with pytest.raises(ImproperlyConfigured, match="LLM_PROVIDER_WORK_API_VERSION is required"):
        _config(env)
    env["LLM_PROVIDER_WORK_API_VERSION"] = "2024-10-21"
    work = _config(env, main="work:cohorta-main").providers["work"]
    assert (work.kind, work.api_version) == ("azure", "2024-10-21")
    with pytest.raises(ImproperlyConfigured, match="LLM_PROVIDER_BAD_KIND must be one of"):
        _config({"LLM_PROVIDERS": "bad", "LLM_PROVIDER_BAD_KIND": "anthropic"})
    with pytest.raises(ImproperlyConfigured, match="not valid"):
        _config({"LLM_PROVIDERS": "Has Space"})


def test_production_refuses_an_alias_on_a_provider_without_a_key_or_not_configured():
    env = {"OPENAI_API_KEY": "sk-secret-openai", "LLM_PROVIDERS": "gemini"}
    with pytest.raises(ImproperlyConfigured) as missing_key:
        _config(env, mini="gemini:gemini-2.5-flash", production=True)
    assert "LLM_MODEL_MINI" in str(missing_key.value) and "LLM_PROVIDER_GEMINI_API_KEY" in str(missing_key.value)
    assert "sk-secret-openai" not in str(missing_key.value)
    with pytest.raises(ImproperlyConfigured, match="'azure', which is not configured: add it to LLM_PROVIDERS"):
        _config({"OPENAI_API_KEY": "sk-1"}, main="azure:cohorta-main", production=True)
    # The same in development: a warning, and that alias answers from the simulator.
    config = _config(env, mini="gemini:gemini-2.5-flash")
    assert not config.simulated and len(config.warnings) == 1 and "offline simulator" in config.warnings[0]
    # Keyless kinds need no key; no key anywhere at all is the simulator, in production too.
    local = {"LLM_PROVIDERS": "ollama"}
    assert not _config(
        local, main="ollama:llama3.2", mini="ollama:llama3.2", embedding="ollama:nomic-embed-text"
    ).simulated
    assert _config({}, production=True).simulated


def _settings_subprocess(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    dropped = {"DJANGO_SETTINGS_MODULE", "DEBUG", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("OPENAI_", "LLM_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SQLITE_PATH": "/tmp/cohorta-settings-test.sqlite3",
            "DEBUG": "0",
            "SECRET_KEY": "k" * 10 + "Zq8#vL2@pX9!mR4$tW7^yB1&nC6*eF3(hJ5)uA0-sD" + "g" * 10,
            "ALLOWED_HOSTS": "cohorta.example.com",
            **extra_env,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_provider_whose_key_is_missing_stops_production_at_start(tmp_path):
    two = {
        "OPENAI_API_KEY": "sk-openai-value",
        "LLM_PROVIDERS": "gemini",
        "LLM_MODEL_MINI": "gemini:gemini-2.5-flash",
    }
    refused = _settings_subprocess(two)
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "LLM_PROVIDER_GEMINI_API_KEY" in refused.stderr
    assert "sk-openai-value" not in refused.stderr
    key_file = tmp_path / "gemini-key"
    key_file.write_text("gem-secret\n")
    started = _settings_subprocess({**two, "LLM_PROVIDER_GEMINI_API_KEY_FILE": str(key_file)})
    assert started.returncode == 0, started.stderr


# --- the gateway against fake providers ------------------------------------------------------------------------


def _route(settings, providers: dict[str, ProviderConfig], **aliases: str) -> None:
    """Point the settings at these providers, each alias at ``provider:model``."""
    settings.LLM_SIMULATED = False
    settings.LLM_PROVIDERS = providers
    settings.LLM_ALIAS_PROVIDERS = {alias: spec.partition(":")[0] for alias, spec in aliases.items()}
    chat = {alias: spec.partition(":")[2] for alias, spec in aliases.items() if alias != "embedding"}
    settings.LLM_MODELS = chat
    if "embedding" in aliases:
        settings.LLM_EMBEDDING_MODELS = {"embedding": aliases["embedding"].partition(":")[2]}
    settings.LLM_READ_TIMEOUT = 2.0
    settings.LLM_DEADLINE_SECONDS = 10.0
    call_command("seed_model_pricing", verbosity=0)


@pytest.mark.django_db
def test_each_alias_calls_its_own_provider_and_records_what_ran(openai_and_gemini, owner):
    openai_fake, gemini_fake = openai_and_gemini
    main = complete(feature="persona_response", messages=MESSAGES, user=owner)  # main
    mini = complete(feature="summary", messages=MESSAGES, user=owner)  # mini
    assert [r.path for r in openai_fake.requests] == ["/v1/chat/completions"]
    assert [r.path for r in gemini_fake.requests] == ["/v1beta/openai/chat/completions"]
    assert openai_fake.requests[0].body["model"] == "gpt-5.4"
    assert gemini_fake.requests[0].body["model"] == "gemini-2.5-flash"
    assert gemini_fake.requests[0].headers["authorization"] == "Bearer gem-key"
    first, second = UsageEvent.objects.order_by("id")
    assert (first.provider, first.model, first.model_snapshot, first.model_alias) == (
        "openai",
        "gpt-5.4",
        "gpt-5.4-2026-03-05",
        "main",
    )
    assert first.request_id == openai_fake.responses[0].request_id
    assert (second.provider, second.model, second.model_snapshot, second.model_alias) == (
        "gemini",
        "gemini-2.5-flash",
        "gemini-2.5-flash",
        "mini",
    )
    assert second.request_id == ""  # Gemini's endpoint names no request
    assert main.text == openai_fake.responses[0].content and mini.text == gemini_fake.responses[0].content
    assert first.cost_usd > 0 and second.cost_usd > 0 and not (first.price_missing or second.price_missing)


@pytest.mark.django_db
def test_gemini_thinking_tokens_are_metered_and_priced_as_output(openai_and_gemini, owner):
    _, gemini_fake = openai_and_gemini
    gemini_fake.reasoning_tokens = 120
    result = complete(feature="summary", messages=MESSAGES, user=owner)
    wire = gemini_fake.responses[-1].usage
    visible = count_tokens(gemini_fake.responses[-1].content)
    assert wire["completion_tokens"] == visible  # the endpoint counts the visible answer only…
    assert wire["total_tokens"] == wire["prompt_tokens"] + visible + 120  # …and the thinking beside it
    event = UsageEvent.objects.get()
    assert (event.output_tokens, event.reasoning_tokens, event.usage_source) == (
        visible + 120,
        120,
        UsageSource.REPORTED,
    )
    assert result.tokens.output_tokens == visible + 120
    # gemini-2.5-flash: $0.30 in, $2.50 out per million (usage/pricing/model_prices.json)
    expected = (event.input_tokens * 0.30 + (visible + 120) * 2.50) / 1_000_000
    assert float(event.cost_usd) == pytest.approx(expected, abs=1e-8)


@pytest.mark.django_db
def test_one_provider_down_fails_its_aliases_clearly_while_the_other_works(openai_and_gemini, owner):
    openai_fake, gemini_fake = openai_and_gemini
    openai_fake.stop()  # the provider behind main is gone: connections refused
    with pytest.raises(errors.LLMUnavailable) as failed:
        complete(feature="persona_response", messages=MESSAGES, user=owner)
    assert "unavailable" in str(failed.value) and "test-key" not in str(failed.value)
    answer = complete(feature="summary", messages=MESSAGES, user=owner)  # mini, on Gemini
    assert answer.text and len(gemini_fake.requests) == 1
    assert set(UsageEvent.objects.filter(status=UsageStatus.OK).values_list("provider", flat=True)) == {"gemini"}
    assert not UsageEvent.objects.filter(provider="openai", status=UsageStatus.OK).exists()


@pytest.mark.django_db
def test_a_provider_answering_errors_is_retried_then_fails_alone(openai_and_gemini, owner, settings):
    openai_fake, gemini_fake = openai_and_gemini
    settings.LLM_MAX_RETRIES = 1
    gemini_fake.add_fault("server_error", status=503, times=5)
    with pytest.raises(errors.LLMUnavailable):
        complete(feature="summary", messages=MESSAGES, user=owner)
    failed = list(UsageEvent.objects.filter(provider="gemini").values_list("status", "usage_source"))
    assert failed == [(UsageStatus.ERROR, UsageSource.NONE)] * 2  # each attempt metered, nothing billed
    complete(feature="persona_response", messages=MESSAGES, user=owner)
    assert UsageEvent.objects.filter(provider="openai", status=UsageStatus.OK).count() == 1
    assert len(openai_fake.requests) == 1


@pytest.mark.django_db
def test_in_development_an_alias_on_a_provider_without_a_key_uses_the_simulator(settings, owner):
    with FakeOpenAIServer(api_key="test-key") as fake:
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "test-key", fake.base_url
        _route(
            settings,
            {
                "openai": ProviderConfig(name="openai", uses_openai_env=True),
                "gemini": ProviderConfig("gemini", "gemini"),
            },
            main="openai:gpt-5.4",
            mini="gemini:gemini-2.5-flash",
        )
        assert isinstance(get_provider("mini"), SimulatedProvider)
        assert not isinstance(get_provider("main"), SimulatedProvider)
        complete(feature="summary", messages=MESSAGES, user=owner)
        assert fake.requests == []
        assert UsageEvent.objects.get().simulated


@pytest.mark.django_db
def test_azure_calls_the_deployment_with_its_header_and_prices_the_model_it_ran(settings, owner):
    snapshots = {"cohorta-main": "gpt-5.4-2026-03-05", "cohorta-embed": "text-embedding-3-small"}
    with FakeOpenAIServer(api_key="az-key", shape="azure", model_snapshots=snapshots) as azure:
        config = ProviderConfig("azure", "azure", base_url=azure.base_url, api_key="az-key", api_version="2024-10-21")
        _route(settings, {"azure": config}, main="azure:cohorta-main", embedding="azure:cohorta-embed")
        settings.LLM_PROVIDER_NAME = "azure"
        complete(feature="persona_response", messages=MESSAGES, user=owner, max_tokens=500)
        request = azure.requests[-1]
        assert request.path == "/openai/deployments/cohorta-main/chat/completions"
        assert request.headers["api-key"] == "az-key" and "authorization" not in request.headers
        assert request.body["max_completion_tokens"] == 500
        vectors = embed(feature="survey_rating", texts=["I'd buy it", "Not for me"], user=owner)
        assert azure.requests[-1].path == "/openai/deployments/cohorta-embed/embeddings" and len(vectors) == 2
    chat, embedding = UsageEvent.objects.order_by("id")
    # The deployment name has no price; the model the provider says it ran does (an alias of gpt-5.4).
    assert (chat.provider, chat.model, chat.model_snapshot) == ("azure", "cohorta-main", "gpt-5.4-2026-03-05")
    assert chat.cost_usd > 0 and not chat.price_missing and chat.request_id
    assert (embedding.provider, embedding.model, embedding.model_snapshot) == (
        "azure",
        "cohorta-embed",
        "text-embedding-3-small",
    )
    assert embedding.cost_usd > 0


@pytest.mark.django_db
def test_ollama_without_a_key_or_usage_is_estimated_and_gets_max_tokens(settings, owner):
    with FakeOpenAIServer(api_key="", shape="ollama") as ollama:
        _route(
            settings,
            {"ollama": ProviderConfig("ollama", "ollama", base_url=ollama.base_url)},
            main="ollama:llama3.2:3b",
        )
        # Streamed (someone watches): Ollama's streams carry no usage.
        result = complete(
            feature="persona_response", messages=MESSAGES, user=owner, max_tokens=4, stream_to=lambda delta: None
        )
        body = ollama.requests[-1].body
        assert body["model"] == "llama3.2:3b" and body["max_tokens"] == 4 and "max_completion_tokens" not in body
        assert result.finish_reason == "length"  # the limit was honoured: Ollama reads max_tokens
        event = UsageEvent.objects.get()
        assert (event.provider, event.usage_source, event.status) == ("ollama", UsageSource.ESTIMATED, UsageStatus.OK)
        assert event.input_tokens > 0 and event.output_tokens > 0 and event.request_id == ""
        complete(feature="persona_response", messages=MESSAGES, user=owner)  # plain: its body reports usage
        plain = UsageEvent.objects.latest("id")
        assert (plain.usage_source, plain.streamed, plain.status) == (UsageSource.REPORTED, False, UsageStatus.OK)


@pytest.mark.django_db
def test_vllm_without_a_key_reports_usage_without_details(settings, owner):
    with FakeOpenAIServer(api_key="", shape="vllm") as vllm:
        _route(settings, {"gpu": ProviderConfig("gpu", "vllm", base_url=vllm.base_url)}, main="gpu:qwen3-8b")
        complete(feature="persona_response", messages=MESSAGES, user=owner)
        wire = vllm.responses[-1].usage
        event = UsageEvent.objects.get()
        assert (event.provider, event.usage_source) == ("gpu", UsageSource.REPORTED)
        assert (event.input_tokens, event.output_tokens) == (wire["prompt_tokens"], wire["completion_tokens"])
        assert event.price_missing  # a self-hosted model has no price until an admin gives it one
