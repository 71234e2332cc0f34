"""The moderated discussion: rounds, mentions, failures and retries, quotas, sequence numbers, realtime replay."""

import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cohorta.errors import ApplicationError, QuotaExceeded
from focusgroups import conversation, tasks
from focusgroups import services as focus_services
from focusgroups.discussion import services as discussion
from focusgroups.models import (
    Answer,
    AnswerStatus,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageStatus,
    Participant,
)
from personas.services import persona_create

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = [("Priya Shah", 34, "Nurse"), ("Tom Reed", 58, "Retired engineer"), ("Alex Kim", 27, "Designer")]


def make_session(owner, names=NAMES, **extra) -> FocusGroup:
    focus_group = FocusGroup.objects.create(
        owner=owner,
        title="Meal kits",
        objective="Why do parents try meal kits?",
        concept="A weekly box of recipes",
        **extra,
    )
    for position, (name, age, job) in enumerate(names):
        persona = persona_create(
            owner=owner, data={"name": name, "age": age, "occupation": job, "speaking_style": "Plain and direct."}
        )
        Participant.objects.create(focus_group=focus_group, persona=persona, position=position)
    return focus_group


def at_once(work, *, times: int) -> None:
    """``work()`` in ``times`` threads started together, each closing its own database connection."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def transcript(focus_group):
    return list(Message.objects.filter(focus_group=focus_group).order_by("sequence"))


def test_a_question_is_answered_by_everyone_in_order(owner):
    session = make_session(owner)
    message, answers = discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    assert message.sequence == 1 and len(answers) == 3
    saved = transcript(session)
    assert [m.sequence for m in saved] == [1, 2, 3, 4]
    assert {m.speaker_name for m in saved[1:]} == {"Priya Shah", "Tom Reed", "Alex Kim"}
    assert all(m.status == MessageStatus.COMPLETE and m.content and m.reply_to_id == message.pk for m in saved[1:])
    session.refresh_from_db()
    assert session.status == FocusGroupStatus.LIVE and session.last_sequence == 4


def test_a_round_is_one_task_whose_answers_reach_the_provider_together(owner, fake_llm, monkeypatch):
    fake_llm.ttft = 1.0  # long enough that the round's calls overlap on the server's clock on a loaded machine
    rounds = []
    run_round = tasks.generate_round.apply_async

    def queue_round(args, **options):
        rounds.append(args)
        return run_round(args, **options)

    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", queue_round)
    windows = []
    read_window = conversation.transcript_window
    monkeypatch.setattr(conversation, "transcript_window", lambda **kw: windows.append(kw) or read_window(**kw))
    session = make_session(owner)
    _, answers = discussion.message_post(focus_group=session, text="What would make you try a meal kit?")

    assert rounds == [([str(a.pk) for a in answers],)]  # one task for the round, not one per answer
    assert len(windows) == 1  # the talk so far is read once for the round, not once per persona
    calls = fake_llm.requests
    completed = {r.request_id: r.completed_at for r in fake_llm.responses}
    assert len(calls) == 3 and all("What would make you try a meal kit?" in str(r.body) for r in calls)
    # Every answer call reached the provider before the first one ended: they left together.
    assert all(r.received_monotonic < min(completed.values()) for r in calls)
    saved = transcript(session)[1:]
    assert sorted(m.speaker_name for m in saved) == ["Alex Kim", "Priya Shah", "Tom Reed"]
    assert all(m.status == MessageStatus.COMPLETE and m.content for m in saved)


def test_a_question_asks_for_a_summary_only_when_one_is_due(owner, monkeypatch):
    asked = []
    monkeypatch.setattr("focusgroups.tasks.refresh_summary.apply_async", lambda args, **options: asked.append(args))
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda args, **options: None)  # no worker
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    assert asked == []  # the whole talk still fits in the prompt's window
    turns = conversation.WINDOW_MESSAGES + conversation.SUMMARY_EVERY
    FocusGroup.objects.filter(pk=session.pk).update(last_sequence=turns - 1, summary_through=0)
    session.refresh_from_db()
    discussion.message_post(focus_group=session, text="And what would make you stop?")
    assert asked == [(session.pk,)]


def test_a_round_delivered_twice_at_once_is_answered_once(owner, monkeypatch):
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda args, **options: None)  # no worker
    session = make_session(owner)
    _, answers = discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    answer_ids = [str(a.pk) for a in answers]
    delivered: list[list] = []
    at_once(lambda: delivered.append(discussion.round_generate(answer_ids=answer_ids)), times=2)
    assert sorted(len([m for m in messages if m is not None]) for messages in delivered) == [0, 3]
    saved = transcript(session)[1:]
    assert len(saved) == 3 and all(m.status == MessageStatus.COMPLETE for m in saved)
    assert {(a.status, a.attempts) for a in Answer.objects.filter(pk__in=answer_ids)} == {(AnswerStatus.DONE, 1)}


def test_a_round_is_claimed_in_one_statement_and_answers_someone_removed_meanwhile(owner, fake_llm, monkeypatch):
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda args, **options: None)  # no worker
    session = make_session(owner)
    _, answers = discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    focus_services.participants_set(focus_group=session, persona_ids=[a.persona_id for a in answers[:-1]])
    with CaptureQueriesContext(connection) as queries:  # this thread's: the claim, not the answers' helpers
        saved = discussion.round_generate(answer_ids=[str(a.pk) for a in answers])
    claims = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "focusgroups_answer"') and "attempts" in q["sql"]
    ]
    assert len(claims) == 1 and "RETURNING" in claims[0]
    assert not [
        q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] and "focusgroups_answer" in q["sql"]
    ]
    # Everyone asked answers, the one who left the room meanwhile too, in the order they were asked.
    assert [m.speaker_name for m in saved] == [a.persona.name for a in answers]
    assert all(m.status == MessageStatus.COMPLETE and m.reply_to_id == answers[0].prompt_message_id for m in saved)
    assert {(a.status, a.attempts) for a in Answer.objects.filter(pk__in=[a.pk for a in answers])} == {
        (AnswerStatus.DONE, 1)
    }


def test_posting_a_question_reads_the_session_with_its_owner_in_one_query(owner, owner_api, monkeypatch):
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda args, **options: None)  # no worker
    session = make_session(owner)
    with CaptureQueriesContext(connection) as queries:
        response = owner_api.post(
            f"/api/v1/focus-groups/{session.pk}/messages/", {"content": "What would make you try one?"}, format="json"
        )
    assert response.status_code == 202
    # The owner's budget is checked from the row read with the session, not read again.
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "accounts_user"')]
    # Who is asked needs the names in the room, not the profiles (the worker reads those for the prompts).
    room = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "focusgroups_participant"')]
    assert len(room) == 1 and '"personas_persona"."name"' in room[0] and "backstory" not in room[0]


def test_one_answer_is_its_own_task(owner, fake_llm, monkeypatch):
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda *a, **o: pytest.fail("not a round"))
    session = make_session(owner)
    _, answers = discussion.message_post(focus_group=session, text="@Tom what about price?")
    assert len(answers) == 1 and Message.objects.get(answer_id=answers[0].pk).status == MessageStatus.COMPLETE


def test_mentions_address_only_those_participants(owner):
    session = make_session(owner)
    message, answers = discussion.message_post(focus_group=session, text="@Priya and @tom, what about price?")
    assert {a.persona.name for a in answers} == {"Priya Shah", "Tom Reed"}
    assert len(message.mentions) == 2 and len(transcript(session)) == 3


def test_unknown_mention_is_refused_and_nothing_is_saved(owner):
    session = make_session(owner)
    with pytest.raises(ApplicationError) as info:
        discussion.message_post(focus_group=session, text="@Bob what do you think?")
    assert info.value.code == "unknown_mention" and "@Priya" in info.value.message
    assert transcript(session) == []


HARD_NAMES = [
    ("Dr. Sarah Jones", 51, "GP"),
    ("Sarah Okafor", 29, "Barista"),
    ("Jean-Luc Martin", 44, "Chef"),
    ("Zoë O'Brien", 37, "Teacher"),
    ("J.R. Ewing", 60, "Oil baron"),
    ("Tom Reed", 58, "Retired engineer"),
    ("Tom Reed", 33, "Plumber"),
]


def test_every_participant_is_addressable_by_the_handle_the_page_offers(owner):
    """The handle shown in the participant panel (and inserted by the @ menu) is what the composer
    sends: each one must come back as exactly its participant, whatever punctuation the name has."""
    session = make_session(owner, names=HARD_NAMES)
    participants = list(session.participants.select_related("persona"))
    handles = discussion.mention_handles(participants)
    assert sorted(handles.values()) == sorted(
        ["SarahJones", "SarahOkafor", "Jean-Luc", "Zoë", "JR", "TomReed1", "TomReed2"]
    )
    for participant in participants:
        text = f"@{handles[participant.pk]} what do you think?"
        assert discussion.parse_mentions(text, participants) == [participant], text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("@Dr. what do you think?", ["Dr. Sarah Jones"]),  # what the old @ menu inserted
        ("@Jones, and @Okafor.", ["Dr. Sarah Jones", "Sarah Okafor"]),
        ("@zoe's view?", ["Zoë O'Brien"]),  # no accent, a possessive
        ("@O'Brien?", ["Zoë O'Brien"]),
        ("@jean-luc!", ["Jean-Luc Martin"]),
        ("@J.R. first", ["J.R. Ewing"]),
        ("Thanks @SarahJones.Then @Jean-Luc", ["Dr. Sarah Jones", "Jean-Luc Martin"]),
        ("mail me at me@example.com", []),
    ],
)
def test_mentions_read_names_with_punctuation_and_accents(owner, text, expected):
    session = make_session(owner, names=HARD_NAMES)
    participants = list(session.participants.select_related("persona"))
    assert [p.persona.name for p in discussion.parse_mentions(text, participants)] == expected


def test_a_shared_first_name_is_ambiguous_not_a_guess(owner):
    session = make_session(owner, names=HARD_NAMES)
    with pytest.raises(ApplicationError) as info:
        discussion.message_post(focus_group=session, text="@Sarah, what about price?")
    assert info.value.code == "ambiguous_mention"
    assert "@SarahJones or @SarahOkafor" in info.value.message and transcript(session) == []


def test_the_discussion_page_offers_the_handles(owner, client):
    session = make_session(owner, names=HARD_NAMES[:2])
    client.force_login(owner)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert 'data-handle="SarahJones"' in page and 'data-handle="SarahOkafor"' in page
    assert 'data-handle="Dr."' not in page


def test_the_persona_is_addressed_by_its_given_name(owner):
    session = make_session(owner, names=HARD_NAMES[:2])
    message, _ = discussion.message_post(focus_group=session, text="@SarahJones hello")
    jones = session.participants.get(persona__name="Dr. Sarah Jones").persona
    prompt = conversation.build_persona_messages(focus_group=session, persona=jones, prompt_message=message)
    assert "Reply as Sarah," in prompt[-1]["content"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 20_000])
def test_empty_or_huge_messages_are_refused(owner, text):
    session = make_session(owner)
    with pytest.raises(ApplicationError) as info:
        discussion.message_post(focus_group=session, text=text)
    assert info.value.status_code == 400 and transcript(session) == []


def test_an_ended_session_takes_no_messages(owner):
    session = make_session(owner)
    discussion.focus_group_set_status(focus_group=session, status=FocusGroupStatus.ENDED)
    with pytest.raises(ApplicationError) as info:
        discussion.message_post(focus_group=session, text="Hello?")
    assert info.value.status_code == 409 and "has ended" in info.value.message


def test_status_transitions(owner):
    session = make_session(owner)
    for status in ("live", "paused", "live", "ended"):
        discussion.focus_group_set_status(focus_group=session, status=status)
    with pytest.raises(ApplicationError):
        discussion.focus_group_set_status(focus_group=session, status="live")


def test_one_persona_failing_does_not_stop_the_others_and_can_be_retried(owner, fake_llm):
    session = make_session(owner)
    # The round's answers are on the wire together: Tom's fails after its retries, whatever else is in flight.
    fake_llm.add_fault("server_error", times=3, match="You are Tom Reed, taking part")
    discussion.message_post(focus_group=session, text="What worries you about subscriptions?")
    answers = {m.speaker_name: m for m in transcript(session)[1:]}
    assert {name: m.status for name, m in answers.items()} == {
        "Priya Shah": "complete",
        "Tom Reed": "failed",
        "Alex Kim": "complete",
    }
    failed = answers["Tom Reed"]
    assert failed.content == "" and "unavailable" in failed.error
    retry = discussion.answer_retry(focus_group=session, message=failed)
    retried = Message.objects.get(answer_id=retry.pk)
    assert retried.status == MessageStatus.COMPLETE and retried.retry_of_id == failed.pk
    failed.refresh_from_db()
    assert failed.status == MessageStatus.RETRIED
    with pytest.raises(ApplicationError):
        discussion.answer_retry(focus_group=session, message=retried)  # only failed answers


@pytest.fixture
def pricey_model(settings):
    """A model so expensive that one answer costs dollars."""
    from django.utils import timezone

    from usage.models import ModelPrice

    ModelPrice.objects.create(
        model="pricey-model",
        effective_from=timezone.now().replace(year=2020),
        input_per_1m=Decimal("20000"),
        output_per_1m=Decimal("20000"),
    )
    settings.LLM_MODELS = {**settings.LLM_MODELS, "main": "pricey-model"}


def test_quota_running_out_mid_round_fails_the_rest_cleanly(owner, fake_llm, pricey_model, settings):
    session = make_session(owner)
    owner.monthly_quota_usd = Decimal("1.00")  # the first answer's cost uses it up
    owner.save()
    discussion.message_post(focus_group=session, text="How do you plan weeknight meals?")
    # The round's answers leave together and each checks the budget before its call: those already on the wire
    # finish (a round can overshoot by its own answers), any that start once it is spent fail saying why.
    answers = transcript(session)[1:]
    assert len(answers) == 3 and any(m.status == "complete" for m in answers)
    assert all(m.status == "complete" or (m.content == "" and "budget" in m.error) for m in answers)
    # Now nothing starts at all: refused before anything is saved.
    before = len(transcript(session))
    with pytest.raises(QuotaExceeded):
        discussion.message_post(focus_group=session, text="One more?")
    assert len(transcript(session)) == before


def test_the_session_spending_cap_stops_answers(owner, fake_llm, pricey_model):
    session = make_session(owner, cost_cap_usd=Decimal("1.00"))
    discussion.message_post(focus_group=session, text="First question")
    answers = transcript(session)[1:]
    assert len(answers) == 3 and any(m.status == "complete" for m in answers)
    assert all(m.status == "complete" or "spending cap" in m.error for m in answers)
    # Spent: the next question is refused before anything is saved.
    with pytest.raises(QuotaExceeded) as info:
        discussion.message_post(focus_group=session, text="Second question")
    assert info.value.code == "session_cap_reached" and len(transcript(session)) == 4


def test_sequence_numbers_are_unique_and_gap_free_under_concurrency(owner):
    session = make_session(owner)
    numbers, lock = [], threading.Lock()

    def take():
        for _ in range(10):
            value = conversation.next_sequence(session.pk)
            with lock:
                numbers.append(value)

    at_once(take, times=8)
    assert sorted(numbers) == list(range(1, 81))


def test_prompt_size_stays_bounded_after_200_turns(owner):
    session = make_session(owner)
    priya = session.participants.first().persona

    def prompt_size(turns: int) -> int:
        Message.objects.filter(focus_group=session).delete()
        Message.objects.bulk_create(
            [
                Message(
                    focus_group=session,
                    sequence=i,
                    role="persona" if i % 2 else "researcher",
                    speaker_name="Tom Reed" if i % 2 else "Moderator",
                    content=f"Turn {i}: " + "words " * 40,
                )
                for i in range(1, turns + 1)
            ]
        )
        FocusGroup.objects.filter(pk=session.pk).update(last_sequence=turns, summary="", summary_through=0)
        session.refresh_from_db()
        conversation.summary_refresh(focus_group_id=session.pk)
        session.refresh_from_db()
        prompt = Message.objects.get(focus_group=session, sequence=turns)
        messages = conversation.build_persona_messages(focus_group=session, persona=priya, prompt_message=prompt)
        return sum(len(m["content"]) for m in messages)

    at_50, at_200 = prompt_size(50), prompt_size(200)
    assert at_200 <= at_50 * 1.3
    assert at_200 < conversation.WINDOW_CHARS + 8000
    session.refresh_from_db()
    assert session.summary and session.summary_through == 200 - conversation.WINDOW_MESSAGES


# --- realtime ---------------------------------------------------------------------------


async def _socket(session_id, token):
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/focus-groups/{session_id}/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _collect(communicator, until, timeout=5.0):
    received = []
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        received.append(message)
        if until(message, received):
            return received


async def test_owner_only_sockets(owner, other_user, owner_token):
    from cohorta.accounts.services import api_token_create

    session = await database_sync_to_async(make_session)(owner)
    _, other_token = await database_sync_to_async(api_token_create)(user=other_user, name="x")
    communicator, connected, code = await _socket(session.pk, other_token)
    assert not connected and code == 4404
    communicator, connected, code = await _socket(session.pk, "coh_bogus")
    assert not connected and code == 4401
    communicator, connected, _ = await _socket(session.pk, owner_token)
    assert connected
    await communicator.disconnect()


async def test_live_round_streams_then_a_reconnect_replays_without_loss_or_duplicates(owner, owner_token):
    session = await database_sync_to_async(make_session)(owner)
    communicator, connected, _ = await _socket(session.pk, owner_token)
    assert connected
    await communicator.send_json_to({"type": "hello", "last_seq": 0})
    assert (await communicator.receive_json_from())["type"] == "replay.done"

    await database_sync_to_async(discussion.message_post)(focus_group=session, text="First question?")
    events = await _collect(communicator, lambda m, seen: sum(e["type"] == "message.complete" for e in seen) == 3)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["session.status", "message.new"]  # the first message makes the session live
    assert "participant.typing" in kinds and "token.delta" in kinds
    streamed = "".join(
        e["delta"]
        for e in events
        if e["type"] == "token.delta" and e["answer_id"] == events[-1]["message"]["answer_id"]
    )
    assert streamed.strip() == events[-1]["message"]["content"]
    seen = [e["message"]["sequence"] for e in events if e["type"].startswith("message.")]
    assert seen == [1, 2, 3, 4]
    await communicator.disconnect()  # the browser goes offline…

    await database_sync_to_async(discussion.message_post)(focus_group=session, text="Second question, while away")
    await database_sync_to_async(discussion.message_post)(focus_group=session, text="@Alex and a third")

    communicator, _, _ = await _socket(session.pk, owner_token)  # …and comes back
    await communicator.send_json_to({"type": "hello", "last_seq": 3})  # it had only seen up to 3
    replay = await _collect(communicator, lambda m, seen: m["type"] == "replay.done")
    sequences = [e["message"]["sequence"] for e in replay if e["type"].startswith("message.")]
    assert sequences == list(range(4, 11))  # everything missed, once, in order
    assert replay[-1]["last_seq"] == 10
    await communicator.disconnect()


# --- pages and API ------------------------------------------------------------------------


def test_discussion_page_and_transcript_fallback(owner, client):
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="Hello everyone")
    client.force_login(owner)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert "@Priya" in page and 'data-last-seq="4"' in page and "Hello everyone" in page
    partial = client.get(f"/focus-groups/{session.pk}/transcript/?after=2")
    assert partial["X-Last-Seq"] == "4" and partial.content.decode().count('class="msg ') == 2


def _long_session(owner, count: int) -> FocusGroup:
    session = make_session(owner)
    Message.objects.bulk_create(
        Message(focus_group=session, sequence=n, role="researcher", speaker_name="Moderator", content=f"Turn {n}")
        for n in range(1, count + 1)
    )
    FocusGroup.objects.filter(pk=session.pk).update(last_sequence=count)
    return session


def _sequences(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="msg [^"]*" data-seq="(\d+)"', html)]


def test_a_long_session_shows_its_latest_messages_and_loads_earlier_ones_on_demand(owner, client):
    session = _long_session(owner, 250)
    client.force_login(owner)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert _sequences(page) == list(range(151, 251))
    assert 'data-before="151"' in page and "Show earlier messages (150)" in page and 'data-last-seq="250"' in page

    earlier = client.get(f"/focus-groups/{session.pk}/transcript/?before=151")
    assert _sequences(earlier.content.decode()) == list(range(51, 151))
    assert earlier["X-First-Seq"] == "51" and earlier["X-Earlier"] == "50"
    first = client.get(f"/focus-groups/{session.pk}/transcript/?before=51")
    assert _sequences(first.content.decode()) == list(range(1, 51)) and first["X-Earlier"] == "0"

    # A link to message 20 loads everything from it up to what the page shows.
    linked = client.get(f"/focus-groups/{session.pk}/transcript/?before=151&from=20")
    assert _sequences(linked.content.decode()) == list(range(20, 151)) and linked["X-Earlier"] == "19"
    # Nonsense parameters fall back to the live catch-up instead of failing.
    assert client.get(f"/focus-groups/{session.pk}/transcript/?before=abc").status_code == 200


def test_a_short_session_shows_everything_without_an_earlier_button(owner, client):
    session = _long_session(owner, 100)
    client.force_login(owner)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert _sequences(page) == list(range(1, 101)) and "transcript-earlier" not in page


def test_an_answer_whose_worker_died_is_saved_as_failed_once_and_can_be_retried(owner, monkeypatch, settings):
    monkeypatch.setattr("focusgroups.tasks.generate_round.apply_async", lambda args, **options: None)  # no worker
    session = make_session(owner)
    _, answers = discussion.message_post(focus_group=session, text="What do you think?")
    lost, recent = answers[0], answers[1]
    now = timezone.now()
    deadline = settings.LLM_DEADLINE_SECONDS + discussion.ANSWER_LOST_AFTER_SECONDS
    # Claimed by workers: one died long ago mid-answer, the other is still within its time.
    long_ago, just_now = now - timedelta(seconds=deadline + 1), now - timedelta(seconds=30)
    Answer.objects.filter(pk=lost.pk).update(status=AnswerStatus.STREAMING, started_at=long_ago)
    Answer.objects.filter(pk=recent.pk).update(status=AnswerStatus.STREAMING, started_at=just_now)

    assert discussion.answers_reap() == 1
    assert discussion.answers_reap() == 0  # settled once
    failed = Message.objects.get(focus_group=session, answer_id=lost.pk)
    assert failed.status == MessageStatus.FAILED and "interrupted" in failed.error and failed.content == ""
    assert Answer.objects.get(pk=lost.pk).status == AnswerStatus.FAILED
    assert Answer.objects.get(pk=recent.pk).status == AnswerStatus.STREAMING
    assert not Message.objects.filter(answer_id=recent.pk).exists()
    # The researcher retries it like any failed answer.
    retry = discussion.answer_retry(focus_group=session, message=failed)
    assert retry.retry_of_id == failed.pk and retry.status == AnswerStatus.PENDING


def test_posting_from_the_page(owner, client):
    session = make_session(owner)
    client.force_login(owner)
    response = client.post(
        f"/focus-groups/{session.pk}/messages/", {"content": "Hi all"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 202 and len(response.json()["answer_ids"]) == 3
    bad = client.post(f"/focus-groups/{session.pk}/messages/", {"content": ""}, HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["message"]


def test_api_messages_and_transcript(owner, owner_api):
    session = make_session(owner)
    response = owner_api.post(
        f"/api/v1/focus-groups/{session.pk}/messages/", {"content": "What about price?"}, format="json"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["message"]["sequence"] == 1 and len(body["answer_ids"]) == 3
    after = owner_api.get(f"/api/v1/focus-groups/{session.pk}/messages/?after=1").json()
    assert [m["sequence"] for m in after] == [2, 3, 4]
    full = owner_api.get(f"/api/v1/focus-groups/{session.pk}/transcript/").json()
    assert len(full["messages"]) == 4
    huge = owner_api.post(f"/api/v1/focus-groups/{session.pk}/messages/", {"content": "x" * 20_000}, format="json")
    assert huge.status_code == 400 and "content" in huge.json()["error"]["fields"]


def test_another_users_session_is_404_everywhere(owner, other_user, client):
    from rest_framework.test import APIClient

    session = make_session(owner)
    discussion.message_post(focus_group=session, text="Private")
    message = transcript(session)[1]
    client.force_login(other_user)
    api = APIClient()
    api.force_authenticate(other_user)
    base = f"/focus-groups/{session.pk}"
    assert client.get(f"{base}/").status_code == 404
    assert client.get(f"{base}/transcript/").status_code == 404
    assert client.post(f"{base}/messages/", {"content": "hi"}).status_code == 404
    assert client.post(f"{base}/messages/{message.pk}/retry/").status_code == 404
    assert client.post(f"{base}/status/", {"status": "ended"}).status_code == 404
    for url in ("messages/", "transcript/"):
        assert api.get(f"/api/v1{base}/{url}").status_code == 404
    assert api.post(f"/api/v1{base}/messages/", {"content": "hi"}, format="json").status_code == 404
    assert api.post(f"/api/v1{base}/messages/{message.pk}/retry/").status_code == 404
    session.refresh_from_db()
    assert session.status == "live" and len(transcript(session)) == 4
