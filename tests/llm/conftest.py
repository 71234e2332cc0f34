"""Fixtures of the gateway tests: two fake providers at once."""

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from llm.config import llm_config_from_env
from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def openai_and_gemini(settings) -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    """main on an OpenAI-shaped fake (through the single-provider variables), mini on a Gemini-shaped one."""
    snapshots = {"gpt-5.4": "gpt-5.4-2026-03-05"}
    with (
        FakeOpenAIServer(api_key="test-key", model_snapshots=snapshots) as openai_fake,
        FakeOpenAIServer(api_key="gem-key", shape="gemini") as gemini_fake,
    ):
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = openai_fake.base_url
        config = llm_config_from_env(
            names=["gemini"],
            default_provider="openai",
            models={"main": "gpt-5.4", "mini": "gemini:gemini-2.5-flash"},
            embedding_models={"embedding": "text-embedding-3-small"},
            value=lambda name: {"LLM_PROVIDER_GEMINI_BASE_URL": gemini_fake.base_url}.get(name, ""),
            secret=lambda name: {"LLM_PROVIDER_GEMINI_API_KEY": "gem-key"}.get(name, ""),
            openai_api_key="test-key",
            openai_base_url=openai_fake.base_url,
            production=True,
        )
        settings.LLM_SIMULATED = config.simulated
        settings.LLM_PROVIDERS = config.providers
        settings.LLM_ALIAS_PROVIDERS = config.alias_providers
        settings.LLM_MODELS = config.models
        settings.LLM_EMBEDDING_MODELS = config.embedding_models
        settings.LLM_READ_TIMEOUT = 2.0
        settings.LLM_DEADLINE_SECONDS = 10.0
        call_command("seed_model_pricing", verbosity=0)
        yield openai_fake, gemini_fake
