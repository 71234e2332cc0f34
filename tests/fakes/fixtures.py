"""The ``fake_openai`` pytest fixture: a fake OpenAI server per test (see ``tests/fakes/openai_server.py``).

The main conftest makes it available everywhere with::

    from tests.fakes.fixtures import fake_openai  # noqa: F401

Pointing Cohorta at it: the LLM gateway reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` from settings, so in
a test::

    def test_something(fake_openai, settings):
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake_openai.base_url  # http://127.0.0.1:PORT/v1
        settings.LLM_SIMULATED = False  # computed once from OPENAI_API_KEY at start-up
        ...  # run the code under test
        assert fake_openai.responses[-1].usage["total_tokens"] == ...  # what the "provider" reported

A process started by the test (a worker, ``runserver``) gets the same through its environment:
``OPENAI_API_KEY=test-key OPENAI_BASE_URL=<fake_openai.base_url>``.

Program faults with ``fake_openai.add_fault("rate_limit", retry_after=0.05)``, slow it down with
``fake_openai.ttft = 0.2`` / ``fake_openai.tokens_per_second = 50``, and read what happened in
``fake_openai.requests`` / ``fake_openai.responses``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.stripe_server import FAKE_SECRET_KEY, FakeStripeServer

__all__ = ["fake_openai", "fake_stripe"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started fake OpenAI server (api key ``"test-key"``, no latency), stopped after the test."""
    with FakeOpenAIServer(api_key="test-key", ttft=0.0, tokens_per_second=0.0) as server:
        yield server


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeServer]:
    """A started fake Stripe API (api key ``FAKE_SECRET_KEY``), stopped after the test. Point Cohorta at it with
    ``settings.STRIPE_SECRET_KEY = FAKE_SECRET_KEY`` and ``settings.STRIPE_API_BASE = fake_stripe.base_url``
    (``tests/billing/conftest.py`` has a ``stripe_on`` fixture that does both)."""
    with FakeStripeServer(api_key=FAKE_SECRET_KEY) as server:
        yield server
