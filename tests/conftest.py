import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from cohorta.accounts.services import api_token_create
from tests.factories import UserFactory
from tests.migrated_template import migrated_template

# The project's fake OpenAI server as the ``fake_openai`` fixture.
pytest_plugins = ["tests.fakes.fixtures"]


def pytest_collection_modifyitems(config, items):
    """Service tests need real Postgres and Redis. Without them they are skipped,
    loudly; in CI a missing service is a failure, never a silent skip."""
    have_services = bool(os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL"))
    if have_services:
        return
    if os.environ.get("CI") and any(item.get_closest_marker("service") for item in items):
        raise pytest.UsageError(
            "CI=true but DATABASE_URL (Postgres) and REDIS_URL are not both set: .ci/run sets them."
        )
    skip = pytest.mark.skip(reason="needs DATABASE_URL=postgres://… and REDIS_URL (see README, service mode)")
    for item in items:
        if item.get_closest_marker("service"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """Test databases are copies of a migrated template (tests/migrated_template.py): dj-stripe's slow
    migrations run once per change of the migrations, not once per test database."""
    from django.conf import settings

    template = migrated_template()
    if template:
        settings.DATABASES["default"].setdefault("TEST", {})["TEMPLATE"] = template


@pytest.fixture(autouse=True)
def _isolate(settings, tmp_path):
    cache.clear()  # allauth's rate-limit counters live in the cache
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def owner(db):
    return UserFactory(email="owner@example.com", name="Olivia Owner")


@pytest.fixture
def other_user(db):
    return UserFactory(email="other@example.com", name="Oscar Other")


@pytest.fixture
def staff_user(db):
    return UserFactory(email="staff@example.com", name="Sam Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def owner_api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def owner_token(owner):
    _, raw = api_token_create(user=owner, name="tests")
    return raw


@pytest.fixture
def fake_llm(fake_openai, settings):
    """Cohorta pointed at the project's fake OpenAI server, with the repo's price file seeded."""
    from django.core.management import call_command

    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.LLM_SIMULATED = False
    settings.LLM_READ_TIMEOUT = 5.0
    call_command("seed_model_pricing", verbosity=0)
    return fake_openai
