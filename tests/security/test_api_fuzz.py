"""Schemathesis against our own OpenAPI schema: generated requests, valid and not,
to every operation as a signed-in researcher who owns some data. No 500s, ever.

The schema is the one ``/api/schema/`` serves (drf-spectacular), and requests go
through Django's WSGI handler in-process, inside the test's transaction.
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from billing.services import credits_grant
from cohorta.accounts.services import api_token_create
from tests.focusgroups.factories import FocusGroupFactory, add_message
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = [pytest.mark.slow]


def _load_schema():
    # Built from the generator, not fetched, so collection needs no database.
    from drf_spectacular.generators import SchemaGenerator

    raw = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), cls=DjangoJSONEncoder))
    loaded = schemathesis.openapi.from_dict(raw)
    loaded.app = WSGIHandler()
    return loaded


SCHEMA = _load_schema()
OPERATIONS = {operation.label: operation for operation in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.fixture
def keep_test_connection():
    # A bare WSGI handler closes the database connection after each request, which would
    # close the test's transaction; Django's test client disconnects the same handlers.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def researcher_token(db, keep_test_connection):
    from tests.factories import UserFactory

    user = UserFactory(email="fuzz@example.com")
    credits_grant(user=user, amount=500, idempotency_key="fuzz-grant")
    folder = FolderFactory(owner=user)
    personas = [PersonaFactory(owner=user, folder=folder) for _ in range(3)]
    focus_group = FocusGroupFactory(owner=user, participants=personas)
    add_message(focus_group, content="What do you think of the price?")
    add_message(focus_group, persona=personas[0], content="Too high for me.")
    _, raw = api_token_create(user=user, name="fuzz")
    return raw


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_operation_answers_500(label, researcher_token, settings):
    settings.ALLOWED_HOSTS = ["*"]
    operation = OPERATIONS[label]

    # schemathesis' own pytest integration needs pytest internals that pytest 9 removed,
    # so each operation's strategy is driven by Hypothesis directly.
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        database=None,
        # Shrinking a failure takes minutes here; the failing request is printed whole instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def fuzz(case):
        response = case.call(headers={"Authorization": f"Bearer {researcher_token}"})
        detail = f"{case.method} {case.formatted_path} → {response.status_code}\nquery={case.query} body={case.body!r}"
        if response.status_code >= 500:
            # 503 is how the API says a payment provider is down or not configured; anything
            # else, or a 503 that is really a crash, fails.
            assert response.status_code == 503, f"{detail}\n{response.text[:2000]}"
            assert response.json()["error"]["code"] != "server_error", f"{detail}\n{response.text[:2000]}"

    fuzz()
