"""Events a focus group pushes to its websocket group ``focusgroup.<id>``.

Saved messages go out after commit and carry their sequence number; token
deltas are ephemeral (the saved message is the truth). Best effort: a full or
unreachable layer never fails the work; clients catch up from the database.

So that a page opened (or reloaded) in the middle of an answer can show it from
its first word, each delta carries its ``offset`` in the answer's text, and the
text streamed so far is kept in the cache, one entry per participant (see
``stream_snapshots``), which the socket's replay sends. The cache copy is
written at most every ``SNAPSHOT_SECONDS`` (a write per delta would cost the
worker more than the stream itself): a client that finds its live deltas
starting past the copy's end asks again."""

import logging
import threading
import time

from django.core.cache import cache
from django.db import transaction

from cohorta.publisher import publish

logger = logging.getLogger(__name__)

SNAPSHOT_SECONDS = 0.5
# An answer's copy outlives its last write by this long, at most: the worker that wrote it may have died.
SNAPSHOT_TTL_SECONDS = 60
_FORGET_SECONDS = 30 * 60  # a stream never finished in this process (a crash, a skipped turn) is dropped

# answer id → the text streamed so far by this process, with who is speaking.
_streams: dict[str, dict] = {}
_streams_lock = threading.Lock()


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


def send_event(focus_group_id, event: dict) -> None:
    publish(group_name(focus_group_id), {**event, "focus_group_id": focus_group_id})


def publish_message_on_commit(message) -> None:
    payload = message_payload(message)
    focus_group_id = message.focus_group_id

    def send() -> None:
        if message.answer_id and message.persona_id:  # the saved answer now stands for its stream
            _stream_end(focus_group_id, answer_id=message.answer_id, persona_id=message.persona_id)
        send_event(focus_group_id, {"type": "fg.message", "message": payload})

    transaction.on_commit(send)


def snapshot_key(focus_group_id, persona_id) -> str:
    return f"fg:{focus_group_id}:streaming:{persona_id}"


def _write_snapshot(stream: dict) -> None:
    stream["written"] = time.monotonic()
    value = {key: stream[key] for key in ("answer_id", "persona_id", "name", "text")}
    try:
        cache.set(snapshot_key(stream["focus_group_id"], stream["persona_id"]), value, SNAPSHOT_TTL_SECONDS)
    except Exception:  # best effort, like the deltas: without it a reload shows the rest of the answer only
        logger.warning("Could not keep the text of answer %s", stream["answer_id"], exc_info=True)


def _stream_start(focus_group_id, *, answer_id, persona_id, name: str) -> None:
    now = time.monotonic()
    stream = {
        "focus_group_id": focus_group_id,
        "answer_id": str(answer_id),
        "persona_id": persona_id,
        "name": name,
        "text": "",
        "started": now,
        "written": 0.0,
    }
    with _streams_lock:
        for stale in [key for key, value in _streams.items() if now - value["started"] > _FORGET_SECONDS]:
            del _streams[stale]
        _streams[stream["answer_id"]] = stream
    _write_snapshot(stream)  # clears what an earlier attempt at this answer left


def _stream_end(focus_group_id, *, answer_id, persona_id) -> None:
    with _streams_lock:
        _streams.pop(str(answer_id), None)
    key = snapshot_key(focus_group_id, persona_id)
    try:
        current = cache.get(key)
        if current is not None and current.get("answer_id") == str(answer_id):  # not a newer answer's
            cache.delete(key)
    except Exception:
        logger.warning("Could not drop the text of answer %s", answer_id, exc_info=True)


def stream_snapshots(focus_group_id, persona_ids) -> dict[str, dict]:
    """answer id → {answer_id, persona_id, name, text}: the answers streaming in this session as last
    written to the cache, possibly up to ``SNAPSHOT_SECONDS`` behind the live deltas."""
    try:
        found = cache.get_many([snapshot_key(focus_group_id, persona_id) for persona_id in persona_ids])
    except Exception:
        logger.warning("Could not read the answers streaming in focus group %s", focus_group_id, exc_info=True)
        return {}
    return {value["answer_id"]: value for value in found.values()}


def publish_delta(focus_group_id, *, answer_id, persona_id, delta: str) -> None:
    stream = _streams.get(str(answer_id))
    if stream is None:  # no typing event first: keep the text from here on all the same
        _stream_start(focus_group_id, answer_id=answer_id, persona_id=persona_id, name="")
        stream = _streams[str(answer_id)]
    offset = len(stream["text"])
    stream["text"] += delta
    if time.monotonic() - stream["written"] >= SNAPSHOT_SECONDS:
        _write_snapshot(stream)
    # "t": when the worker got the token from the model; clients and benchmarks measure delivery latency with it.
    send_event(
        focus_group_id,
        {
            "type": "fg.delta",
            "answer_id": str(answer_id),
            "persona_id": persona_id,
            "delta": delta,
            "offset": offset,
            "t": time.time(),
        },
    )


def publish_typing(focus_group_id, *, answer_id, persona_id, name: str) -> None:
    """An answer starts (or starts again, after a stop or a crash): its text so far is empty."""
    _stream_start(focus_group_id, answer_id=answer_id, persona_id=persona_id, name=name)
    send_event(
        focus_group_id, {"type": "fg.typing", "answer_id": str(answer_id), "persona_id": persona_id, "name": name}
    )


def publish_reset(focus_group_id, *, answer_id) -> None:
    """The gateway retries the call: the answer starts over, and so do the offsets."""
    stream = _streams.get(str(answer_id))
    if stream is not None:
        stream["text"] = ""
        _write_snapshot(stream)
    send_event(focus_group_id, {"type": "fg.reset", "answer_id": str(answer_id)})


def publish_status_on_commit(focus_group) -> None:
    focus_group_id, status = focus_group.pk, focus_group.status
    transaction.on_commit(lambda: send_event(focus_group_id, {"type": "fg.status", "status": status}))


def publish_live_themes_on_commit(focus_group_id, payload: dict) -> None:
    """A new provisional read of the emerging themes (``focusgroups.report.live_themes``)."""
    transaction.on_commit(lambda: send_event(focus_group_id, {"type": "fg.live_themes", "live_themes": payload}))
