"""A round's answers get ready for the provider one at a time, and every answer is still answered."""

import threading

import pytest

from focusgroups import round_helpers
from llm import gateway
from llm.errors import ProviderServerError
from llm.simulator import SimulatedProvider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sends(monkeypatch) -> list[tuple[str, str]]:
    """What happened, in order: ("ready", item) as an answer starts, ("sent", item) as its request leaves."""
    log: list[tuple[str, str]] = []
    real = SimulatedProvider.complete

    def complete(self, request):
        log.append(("sent", request.messages[-1]["content"]))
        return real(self, request)

    monkeypatch.setattr(SimulatedProvider, "complete", complete)
    return log


def asking(log: list[tuple[str, str]]):
    def answer(item: str) -> str:
        log.append(("ready", item))
        threading.Event().wait(0.002)  # a preparation that gives the GIL away, as a claim or a query does
        return gateway.complete(feature="persona_response", messages=[{"role": "user", "content": item}]).text

    return answer


def test_each_answer_starts_only_once_the_one_before_has_left(sends):
    items = [f"Question for persona {i}" for i in range(6)]
    results = round_helpers.answer_together(asking(sends), items, crashed=lambda item: "")
    assert all(results)
    assert [kind for kind, _ in sends] == ["ready", "sent"] * len(items)
    # The answer that got ready is the one that left next.
    assert [item for kind, item in sends[::2]] == [item for kind, item in sends[1::2]]


def test_an_answer_that_fails_before_its_call_lets_the_next_one_in(sends):
    answer = asking(sends)

    def answer_or_crash(item: str) -> str:
        if item == "crash":
            sends.append(("ready", item))
            raise ValueError("a bug before the call")
        return answer(item)

    results = round_helpers.answer_together(answer_or_crash, ["first", "crash", "third"], crashed=lambda item: "lost")
    assert results[1] == "lost" and results[0] and results[2]
    assert [item for kind, item in sends if kind == "sent"] in (["first", "third"], ["third", "first"])


def test_a_retried_call_does_not_let_a_second_answer_in(sends, monkeypatch):
    """The gate opens once per answer: the retry of an answer's call sends again without opening it a second
    time (which would let two answers get ready at once)."""
    logged = SimulatedProvider.complete
    failed: list[bool] = []

    def flaky(self, request):
        if request.messages[-1]["content"] == "flaky" and not failed:
            failed.append(True)
            sends.append(("sent", "flaky"))
            raise ProviderServerError("The provider is overloaded.")
        return logged(self, request)

    monkeypatch.setattr(SimulatedProvider, "complete", flaky)
    monkeypatch.setattr(gateway, "_wait", lambda state: 0)
    results = round_helpers.answer_together(asking(sends), ["flaky", "second", "third"], crashed=lambda item: "")
    assert all(results) and failed
    for at, (kind, _) in enumerate(sends):
        if kind == "ready":
            ready_before = sum(1 for k, _ in sends[:at] if k == "ready")
            left_before = len({item for k, item in sends[:at] if k == "sent"})
            assert ready_before <= left_before, sends
