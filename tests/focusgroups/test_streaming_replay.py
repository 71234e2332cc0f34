"""A page opened (or reloaded) in the middle of an answer shows it from its first word: deltas carry
their offset in the answer, the worker keeps the text so far in the cache, and the socket's replay
sends it."""

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from focusgroups import conversation, events
from focusgroups.discussion import services as discussion
from focusgroups.models import Answer, AnswerStatus, Message, MessageRole
from tests.focusgroups.test_discussion import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def _sent(monkeypatch) -> list[dict]:
    sent = []
    monkeypatch.setattr(events, "publish", lambda group, event: sent.append(event))
    return sent


def _mid_answer(session) -> Answer:
    """A moderated answer the worker has started: its question saved, the answer not yet."""
    question = Message.objects.create(
        focus_group=session, sequence=conversation.next_sequence(session.pk), role=MessageRole.RESEARCHER, content="Hi?"
    )
    persona = session.participants.first().persona
    return Answer.objects.create(
        focus_group=session, persona=persona, prompt_message=question, status=AnswerStatus.STREAMING
    )


def test_deltas_carry_offsets_that_tile_the_answer_and_the_copy_goes_when_it_is_saved(owner, monkeypatch):
    sent = _sent(monkeypatch)
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    saved = Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).order_by("sequence")
    assert saved.count() == 3
    for message in saved:
        deltas = [e for e in sent if e["type"] == "fg.delta" and e["answer_id"] == str(message.answer_id)]
        assert deltas
        text = ""
        for delta in deltas:
            assert delta["offset"] == len(text)
            text += delta["delta"]
        assert text.strip() == message.content
        assert cache.get(events.snapshot_key(session.pk, message.persona_id)) is None


def test_the_copy_is_written_at_most_every_snapshot_interval(owner, monkeypatch):
    _sent(monkeypatch)
    clock = [100.0]
    monkeypatch.setattr(events.time, "monotonic", lambda: clock[0])
    session = make_session(owner)
    answer = _mid_answer(session)
    kwargs = {"answer_id": answer.pk, "persona_id": answer.persona_id}
    key = events.snapshot_key(session.pk, answer.persona_id)

    events.publish_typing(session.pk, name=answer.persona.name, **kwargs)
    assert cache.get(key)["text"] == ""
    events.publish_delta(session.pk, delta="Honestly, ", **kwargs)
    assert cache.get(key)["text"] == ""  # written a moment ago: the copy may trail the live words
    clock[0] += events.SNAPSHOT_SECONDS
    events.publish_delta(session.pk, delta="it depends", **kwargs)
    assert cache.get(key)["text"] == "Honestly, it depends"
    events.publish_reset(session.pk, answer_id=answer.pk)  # the gateway retries: the answer starts over
    assert cache.get(key)["text"] == ""


async def _socket(session_id, token):
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/focus-groups/{session_id}/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _replay(communicator, last_seq=0) -> dict:
    await communicator.send_json_to({"type": "hello", "last_seq": last_seq})
    while True:
        event = await communicator.receive_json_from(timeout=5)
        if event["type"] == "replay.done":
            return event


async def test_a_page_opened_mid_answer_gets_the_text_so_far_then_the_rest(owner, owner_token, monkeypatch):
    monkeypatch.setattr(events, "SNAPSHOT_SECONDS", 0)
    session = await database_sync_to_async(make_session)(owner)
    answer = await database_sync_to_async(_mid_answer)(session)
    persona = await database_sync_to_async(lambda: answer.persona)()
    kwargs = {"answer_id": answer.pk, "persona_id": persona.pk}
    events.publish_typing(session.pk, name=persona.name, **kwargs)
    events.publish_delta(session.pk, delta="Well, the first ", **kwargs)
    events.publish_delta(session.pk, delta="thing I'd check", **kwargs)

    communicator = await _socket(session.pk, owner_token)  # the reload
    done = await _replay(communicator, last_seq=1)
    assert done["streaming"] == [
        {
            "answer_id": str(answer.pk),
            "persona_id": persona.pk,
            "name": persona.name,
            "text": "Well, the first thing I'd check",
        }
    ]
    events.publish_delta(session.pk, delta=" is the price.", **kwargs)
    live = await communicator.receive_json_from(timeout=5)
    assert live["type"] == "token.delta" and live["offset"] == len("Well, the first thing I'd check")
    await communicator.disconnect()


async def test_an_autonomous_turn_streaming_is_replayed_and_a_saved_answer_is_not(owner, owner_token, monkeypatch):
    """An autonomous turn has no Answer row: its copy alone says it is being written. A copy a worker
    left behind for an answer already saved says nothing."""
    monkeypatch.setattr(events, "SNAPSHOT_SECONDS", 0)
    session = await database_sync_to_async(make_session)(owner)
    personas = await database_sync_to_async(lambda: [p.persona for p in session.participants.all()])()
    turn = uuid.uuid4()
    events.publish_typing(session.pk, answer_id=turn, persona_id=personas[0].pk, name=personas[0].name)
    events.publish_delta(session.pk, answer_id=turn, persona_id=personas[0].pk, delta="I'd say no.")
    finished = uuid.uuid4()
    events.publish_typing(session.pk, answer_id=finished, persona_id=personas[1].pk, name=personas[1].name)
    events.publish_delta(session.pk, answer_id=finished, persona_id=personas[1].pk, delta="Done already.")
    await database_sync_to_async(Message.objects.create)(
        focus_group=session,
        sequence=1,
        role=MessageRole.PERSONA,
        persona=personas[1],
        content="Done already.",
        answer_id=finished,
    )  # saved without its after-commit cleanup, as when the worker dies right after the commit

    communicator = await _socket(session.pk, owner_token)
    done = await _replay(communicator)
    assert done["streaming"] == [
        {"answer_id": str(turn), "persona_id": personas[0].pk, "name": personas[0].name, "text": "I'd say no."}
    ]
    await communicator.disconnect()
