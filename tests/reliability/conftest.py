"""Fixtures of the reliability suite: a researcher with credits and an API token, sessions, the fake LLM
with a clock on its answers, and a service-mode stack (worker + daphne) torn down after the test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from billing.services import credits_grant
from cohorta.accounts.services import api_token_create
from focusgroups.models import DiscussionGuide, FocusGroup, Participant
from personas.services import persona_create
from tests.factories import UserFactory
from tests.fakes.openai_server import FakeOpenAIServer
from tests.reliability.stack import Stack

NAMES = [
    ("Priya Shah", 34, "Nurse"),
    ("Tom Reed", 58, "Electrician"),
    ("Alex Kim", 27, "Designer"),
    ("Maria Lopez", 45, "Teacher"),
    ("Sam Okafor", 39, "Accountant"),
    ("Jane Moss", 62, "Retired pharmacist"),
    ("Luca Bianchi", 31, "Chef"),
    ("Aiko Tanaka", 29, "Developer"),
    ("Omar Haddad", 51, "Taxi driver"),
    ("Grace Lee", 23, "Student"),
    ("Noah Berg", 42, "Farmer"),
    ("Ruth Adams", 36, "Paramedic"),
]


def guide(sections: int, questions: int, turn_budget: int) -> dict:
    return {
        "title": "Meal kits",
        "sections": [
            {
                "title": f"Part {s + 1}",
                "goal": "Explore how they cook and shop",
                "turn_budget": turn_budget,
                "questions": [
                    {"text": f"Part {s + 1}, question {q + 1}: how do you plan weeknight dinners?", "probes": []}
                    for q in range(questions)
                ],
            }
            for s in range(sections)
        ],
    }


def make_session(owner, *, people: int, guide_data: dict | None = None, title: str = "Meal kits") -> FocusGroup:
    session = FocusGroup.objects.create(owner=owner, title=title, objective="Why busy parents try meal kits")
    for i, (name, age, job) in enumerate(NAMES[:people]):
        persona = persona_create(owner=owner, data={"name": name, "age": age, "occupation": job})
        Participant.objects.create(focus_group=session, persona=persona, position=i)
    if guide_data is not None:
        DiscussionGuide.objects.create(focus_group=session, data=guide_data)
    return session


class Researcher:
    def __init__(self, user, token: str) -> None:
        self.user = user
        self.token = token


@pytest.fixture
def researcher(transactional_db) -> Researcher:
    user = UserFactory(email="reliability@example.com")
    credits_grant(user=user, amount=100, idempotency_key="reliability:fund")
    _, token = api_token_create(user=user, name="reliability")
    return Researcher(user, token)


@pytest.fixture
def priced(transactional_db) -> None:
    call_command("seed_model_pricing", verbosity=0)


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI server; each recorded answer also gets ``recorded_at`` (time.time()), so a request
    can be placed against the moment a worker was killed."""
    server = FakeOpenAIServer(api_key="test-key")
    record = server._record_response

    def stamped(response) -> None:
        response.recorded_at = time.time()
        record(response)

    server._record_response = stamped  # type: ignore[method-assign]
    with server:
        yield server


@pytest.fixture
def make_stack(tmp_path) -> Iterator:
    stacks: list[Stack] = []

    def make(**kwargs) -> Stack:
        stack = Stack(tmp_path, **kwargs)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


def chat_responses(server: FakeOpenAIServer) -> list:
    return [r for r in server.responses if r.path == "/v1/chat/completions"]


def closing_turns(session: FocusGroup) -> int:
    """1 when the run ended on the moderator's wrap-up: a turn that saved a closing line and no answer."""
    from focusgroups.models import Message, MessageRole

    last = Message.objects.filter(focus_group=session).order_by("-sequence").first()
    return int(last is not None and last.role == MessageRole.MODERATOR)
