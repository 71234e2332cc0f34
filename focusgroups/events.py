"""Events a focus group pushes to its websocket group ``focusgroup.<id>``.

Saved messages go out after commit and carry their sequence number; token
deltas are ephemeral (the saved message is the truth). Best effort: a full or
unreachable layer never fails the work; clients catch up from the database."""

import logging
import time

from django.db import transaction

from cohorta.publisher import publish

logger = logging.getLogger(__name__)


def group_name(focus_group_id) -> str:
    return f"focusgroup.{focus_group_id}"


def message_payload(message) -> dict:
    return {
        "id": message.pk,
        "sequence": message.sequence,
        "role": message.role,
        "persona_id": message.persona_id,
        "speaker_name": message.speaker_name,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "mentions": message.mentions,
        "reply_to": message.reply_to_id,
        "answer_id": str(message.answer_id) if message.answer_id else None,
        "retry_of": message.retry_of_id,
        "simulated": message.simulated,
        "created_at": message.created_at.isoformat(),
    }


def _send(focus_group_id, event: dict) -> None:
    publish(group_name(focus_group_id), {**event, "focus_group_id": focus_group_id})


def publish_message_on_commit(message) -> None:
    payload = message_payload(message)
    focus_group_id = message.focus_group_id
    transaction.on_commit(lambda: _send(focus_group_id, {"type": "fg.message", "message": payload}))


def publish_delta(focus_group_id, *, answer_id, persona_id, delta: str) -> None:
    # "t": when the worker got the token from the model; clients and benchmarks measure delivery latency with it.
    _send(
        focus_group_id,
        {"type": "fg.delta", "answer_id": str(answer_id), "persona_id": persona_id, "delta": delta, "t": time.time()},
    )


def publish_typing(focus_group_id, *, answer_id, persona_id, name: str) -> None:
    _send(focus_group_id, {"type": "fg.typing", "answer_id": str(answer_id), "persona_id": persona_id, "name": name})


def publish_reset(focus_group_id, *, answer_id) -> None:
    _send(focus_group_id, {"type": "fg.reset", "answer_id": str(answer_id)})


def publish_status_on_commit(focus_group) -> None:
    focus_group_id, status = focus_group.pk, focus_group.status
    transaction.on_commit(lambda: _send(focus_group_id, {"type": "fg.status", "status": status}))
