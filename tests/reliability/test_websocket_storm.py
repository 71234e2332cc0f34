"""A 1,500-message discussion streamed through real daphne + channels-redis while websocket clients
misbehave.

The stream is real: 116 moderated rounds posted through the API, each answered in parallel by 12
personas on a Celery worker (token deltas and all) against the fake LLM. Meanwhile:

* a storm client disconnects and reconnects 25 times (clean closes, dropped TCP connections, drops in
  the middle of a replay) and resumes each time with ``hello`` from the sequence it has everything up to;
* a page client does the same the way ``static/js/discussion.js`` does it: hello from the *highest*
  sequence it has seen;
* a steady client stays connected throughout;
* one saved message's live event is lost on the way (the layer is at-most-once);
* a stalled client says hello and then stops reading (a tiny receive buffer, websockets' flow control
  on) while far more events than the channel layer's capacity (50 here) go out; it resumes at the end.

Invariants: every client ends with every sequence 1..N exactly once, each with the saved content; every
connection carries the saved messages after its hello's sequence once each, in order, without a gap
(so resuming from the highest sequence seen is safe); the steady client got everything live, in order,
the lost event made up for before the next message; the server kept answering (health checks, new
clients) while the stalled client held its buffers; the stalled client catches up through replay with nothing lost."""

import json
import random
import socket
import threading
import time
import urllib.request
from decimal import Decimal

import pytest
from django.db import transaction

from focusgroups.conversation import next_sequence
from focusgroups.models import Answer, AnswerStatus, FocusGroup, Message, MessageRole
from tests.reliability.conftest import make_session
from tests.reliability.stack import SessionClient, rss_kb

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PEOPLE = 12
ROUNDS = 116  # 116 x (1 question + 12 answers) = 1,508 messages
RECONNECTS = 25
CAPACITY = 50


class PageClient(SessionClient):
    """Resumes from the highest sequence it has seen, like the discussion page's script."""

    @property
    def watermark(self) -> int:
        return max(self.messages, default=0)


def _storm(client: SessionClient, rng: random.Random, streaming: threading.Event, errors: list) -> None:
    try:
        modes = ["clean", "abrupt", "mid_replay"]
        for i in range(RECONNECTS):
            client.open()
            client.hello()
            mode = modes[i % 3]
            if mode == "mid_replay":
                for _ in range(rng.randint(0, 4)):
                    client.recv(0.5)
                client.close(abrupt=True)
            else:
                until = time.monotonic() + rng.uniform(0.2, 1.6)
                while time.monotonic() < until:
                    client.recv(0.1)
                client.close(abrupt=mode == "abrupt")
            client.hellos_while_streaming += int(streaming.is_set())
            time.sleep(rng.uniform(0, 0.3))
        # Then stay until the stream is over.
        client.open()
        client.hello()
        while streaming.is_set():
            client.recv(0.2)
        client.close()
    except Exception as exc:  # surfaced by the test thread
        errors.append((client.name, repr(exc)))


def _steady(client: SessionClient, ready: threading.Event, done: threading.Event, errors: list) -> None:
    try:
        client.open()
        client.hello()
        client.until_replay_done()
        ready.set()
        while not done.is_set():
            client.recv(0.2)
        client.close()
    except Exception as exc:
        errors.append((client.name, repr(exc)))


def _health_ms(base_url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=10) as response:
        json.loads(response.read())
    return (time.monotonic() - started) * 1000


@pytest.mark.parametrize("flavour", ["pubsub", "core"])
def test_reconnect_storm_and_a_stalled_client_lose_nothing(researcher, priced, llm, make_stack, flavour):
    user = researcher.user
    user.monthly_quota_usd = Decimal("10000")
    user.save(update_fields=["monthly_quota_usd"])
    session = make_session(user, people=PEOPLE)
    llm.completion_tokens = 12  # short answers: the test is about the stream, not about the text
    stack = make_stack(llm_base_url=llm.base_url, CHANNEL_LAYER_FLAVOUR=flavour, CHANNEL_LAYER_CAPACITY=str(CAPACITY))
    stack.start_worker(concurrency=PEOPLE + 4)
    stack.start_web()
    web_pid = stack.procs["web"].pid
    host, port = stack.base_url.removeprefix("http://").split(":")

    # The stalled client: connected and subscribed, then it never reads.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    stalled = SessionClient(stack, session.pk, researcher.token, "stalled")
    stalled.open(sock=sock, max_queue=4, ping_interval=None)  # no keepalive: it is not reading
    stalled.hello()

    streaming, done, steady_ready = threading.Event(), threading.Event(), threading.Event()
    streaming.set()
    errors: list = []
    storm = SessionClient(stack, session.pk, researcher.token, "storm")
    page = PageClient(stack, session.pk, researcher.token, "page")
    steady = SessionClient(stack, session.pk, researcher.token, "steady")
    for client in (storm, page):
        client.hellos_while_streaming = 0
    threads = [
        threading.Thread(target=_storm, args=(storm, random.Random(3), streaming, errors), daemon=True),
        threading.Thread(target=_storm, args=(page, random.Random(4), streaming, errors), daemon=True),
        threading.Thread(target=_steady, args=(steady, steady_ready, done, errors), daemon=True),
    ]
    for thread in threads:
        thread.start()
    assert steady_ready.wait(20), errors

    rss_before = rss_kb(web_pid)
    health: list[float] = []
    late_joins: list[float] = []
    late_caught_up: list[bool] = []
    started = time.monotonic()
    for r in range(ROUNDS):
        status, body = stack.api(
            "POST", f"/api/v1/focus-groups/{session.pk}/messages/", researcher.token, {"content": f"Round {r + 1}: "
            "what would make you switch to a meal kit, and what would make you cancel it?"}
        )  # fmt: skip
        assert status == 202, body
        # At most one round still answering while the next is posted, as a brisk researcher would.
        deadline = time.monotonic() + 60
        while _answering(session) > PEOPLE and time.monotonic() < deadline:
            time.sleep(0.02)
        if r % 20 == 10:
            health.append(_health_ms(stack.base_url))
            # A new client joins mid-stream and replays everything so far while the stalled one is stuck.
            t0 = time.monotonic()
            so_far = FocusGroup.objects.get(pk=session.pk).last_sequence
            late = SessionClient(stack, session.pk, researcher.token, "late")
            late.catch_up(so_far, timeout=20)
            late_joins.append(time.monotonic() - t0)
            late_caught_up.append(late.watermark >= so_far)
    _wait_answered(session, stack)
    # A message whose live event is lost (the layer is at-most-once): saved, never published. Then one
    # more round, published as usual: connected clients must get the lost message before it.
    with transaction.atomic():
        lost = Message.objects.create(
            focus_group=session,
            sequence=next_sequence(session.pk),
            role=MessageRole.RESEARCHER,
            speaker_name="Moderator",
            content="A question whose live event never reached the websocket layer.",
        )
    status, body = stack.api(
        "POST", f"/api/v1/focus-groups/{session.pk}/messages/", researcher.token, {"content": "@Priya one more?"}
    )
    assert status == 202, body
    _wait_answered(session, stack)
    stream_seconds = time.monotonic() - started
    total = FocusGroup.objects.get(pk=session.pk).last_sequence
    assert total == ROUNDS * (PEOPLE + 1) + 3
    rss_stalled = rss_kb(web_pid)
    streaming.clear()
    # The last live events reach the clients still connected: wait for the steady one (it is
    # asserted below to have had everything live), a bounded time, as a loaded CI machine is slow.
    deadline = time.monotonic() + 30
    while len(steady.messages) < total and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    # The stalled client wakes up: it reads what the server kept for it, then reconnects and replays.
    while stalled.recv(1.5) is not None:
        pass
    got_while_stalled = len(stalled.messages)
    stalled.close()
    stalled.catch_up(total)
    # The others finish with a last hello, as after any reconnect.
    for client in (storm, steady):
        client.catch_up(total)
    page.catch_up(total)

    crashes = stack.crashes()
    assert not crashes, "\n\n".join(crashes[:5])
    saved = {m.sequence: m for m in Message.objects.filter(focus_group=session)}
    assert sorted(saved) == list(range(1, total + 1))
    for client in (storm, steady, stalled):
        assert sorted(client.messages) == list(range(1, total + 1)), (client.name, _missing(client, total))
        for seq, message in client.messages.items():
            assert (message["id"], message["content"]) == (saved[seq].pk, saved[seq].content), (client.name, seq)
    for client in (storm, page, steady, stalled):
        assert not client.order_violations(), client.order_violations()[:3]

    # The steady client needed no replay: everything came live (or made up for), once each, in order.
    live = [seq for conn, seq, replayed in steady.deliveries if conn == 1 and not replayed]
    page_missing = _missing(page, total)
    print(
        f"\n[{flavour}] {total} messages in {stream_seconds:.1f}s; storm: {storm.connections} connections, "
        f"{len(storm.deliveries) - total} duplicate deliveries; steady: {len(live)} live; stalled: "
        f"{got_while_stalled} messages read from the server's buffer, then replay "
        f"(closed by server: {stalled.closed_by_server[:1]}); daphne RSS {rss_before // 1024} -> "
        f"{rss_stalled // 1024} MB while stalled; health max {max(health):.0f} ms; late joiner max "
        f"{max(late_joins):.1f}s; page-style client missing {page_missing}"
    )
    # How many came live rather than made up for is printed, not asserted: channels-redis group sends are
    # at-most-once by design, and on a loaded machine the core layer's steady client was seen to reconnect
    # once and catch up (a clean-clone CI run). Nothing lost, once each, in order is the guarantee, above.

    # The storm really was a storm: 25 reconnects, most of them while messages were flowing.
    assert storm.connections >= RECONNECTS + 1 and storm.hellos_while_streaming >= RECONNECTS - 5
    # The server did not block on the stalled socket: every health check answered (within its request's
    # timeout) and every late joiner caught up (within its own). How long they took is printed above, for the
    # record only: on a loaded machine a duration proves nothing.
    assert len(health) == len(late_caught_up) > 0 and all(late_caught_up), late_caught_up

    assert not page_missing, f"a client resuming from its highest sequence lost {page_missing}"
    assert any(seq == lost.sequence for _, seq, _ in steady.deliveries), "the lost event was never made up for"


def _wait_answered(session, stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _answering(session):
        assert time.monotonic() < deadline, "answers never finished\n" + stack.logs()
        time.sleep(0.05)


def _answering(session) -> int:
    return Answer.objects.filter(focus_group=session, status__in=[AnswerStatus.PENDING, AnswerStatus.STREAMING]).count()


def _missing(client: SessionClient, total: int) -> list[int]:
    return sorted(set(range(1, total + 1)) - set(client.messages))[:20]
