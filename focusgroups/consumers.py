"""The live discussion socket: ``/ws/focus-groups/<id>/``.

Owner only, checked on connect and again (at most every few seconds) as
events flow. Subscribe first, then replay: the client sends
``{"type": "hello", "last_seq": N}`` and gets every saved message after N from
the database before live events; it dedupes by sequence number.

After the hello, saved messages reach the client in sequence order without
gaps, so a client can safely resume from the highest sequence it has. Live
events can arrive out of order (answers saved in parallel publish after
their commits, in any order) or not at all (the channel layer is
at-most-once). A message is numbered under the session's row lock, held
until its transaction commits, so when message N arrives every message
before it is already in the database: a live message that skips ahead is
preceded by the missing ones, read from the database, and one that was
already sent is dropped. Saved-message events that come before the hello
are not sent: the hello's replay reads them from the database.

The replay ends with ``replay.done``, listing the answers still being
written with their text so far (``streaming``), so a page opened mid-answer
shows it from its first word; live deltas carry their offset in that text,
and the client skips what it already has."""

import time
from typing import Any

from channels.db import database_sync_to_async
from django.http import Http404

from cohorta.realtime import CLOSE_NOT_FOUND, UserConsumer
from focusgroups.access import get_focus_group_for_user
from focusgroups.events import group_name, message_payload, stream_snapshots
from focusgroups.models import Answer, AnswerStatus, FocusGroup, Message, Participant
from focusgroups.report.live_themes import live_themes_latest

RECHECK_SECONDS = 5.0
REPLAY_BATCH = 500


class SessionConsumer(UserConsumer):
    async def connect(self) -> None:
        if not await self.authenticate():
            return
        self.focus_group_id = self.scope["url_route"]["kwargs"]["fg_id"]
        if not await self._owns():
            await self.close(code=CLOSE_NOT_FOUND)  # another user's session is simply not there
            return
        self.checked_at = time.monotonic()
        # Every message up to ``delivered`` has been sent on this socket; ``ahead`` holds the few sent
        # past it. None until the client's hello.
        self.delivered: int | None = None
        self.ahead: set[int] = set()
        self.group = group_name(self.focus_group_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello":
            try:
                last_seq = max(0, int(content.get("last_seq") or 0))
            except (TypeError, ValueError):
                last_seq = 0
            await self._replay(last_seq)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": "Unknown message type."})

    async def _replay(self, last_seq: int) -> None:
        while True:
            batch, status, streaming, live = await self._after(last_seq)
            for message in batch:
                await self.send_json({"type": _message_event(message), "message": message, "replayed": True})
                last_seq = message["sequence"]
            if len(batch) < REPLAY_BATCH:
                break
        self.delivered, self.ahead = last_seq, set()
        # The latest emerging themes ride along: their live event may have been lost while the socket was down.
        await self.send_json(
            {
                "type": "replay.done",
                "last_seq": last_seq,
                "status": status,
                "streaming": streaming,
                "live_themes": live,
            }
        )

    async def _send_in_order(self, message: dict) -> None:
        """Send a live message after any the client has not had yet; never send one twice."""
        sequence = message["sequence"]
        if self.delivered is None or sequence <= self.delivered or sequence in self.ahead:
            return
        if sequence > self.delivered + 1:
            for missed in await self._between(self.delivered, sequence):
                await self._send_one(missed, filled=True)
        if sequence > self.delivered and sequence not in self.ahead:
            await self._send_one(message, filled=False)

    async def _send_one(self, message: dict, *, filled: bool) -> None:
        sequence = message["sequence"]
        if self.delivered is None or sequence <= self.delivered or sequence in self.ahead:
            return
        event: dict[str, Any] = {"type": _message_event(message), "message": message}
        if filled:
            event["filled"] = True  # read from the database: its live event was late or lost
        await self.send_json(event)
        self.ahead.add(sequence)
        while self.delivered + 1 in self.ahead:
            self.delivered += 1
            self.ahead.discard(self.delivered)

    # --- events from the group -------------------------------------------------------------

    async def _allowed(self) -> bool:
        if time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        if not await self._owns():
            await self.close(code=CLOSE_NOT_FOUND)
            return False
        self.checked_at = time.monotonic()
        return True

    async def fg_message(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self._send_in_order(event["message"])

    async def fg_delta(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json(
                {
                    "type": "token.delta",
                    "answer_id": event["answer_id"],
                    "persona_id": event["persona_id"],
                    "delta": event["delta"],
                    "offset": event.get("offset"),
                    "t": event.get("t"),
                    "sent_at": event.get("sent_at"),
                    "forwarded_at": time.time(),
                }
            )

    async def fg_typing(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json(
                {
                    "type": "participant.typing",
                    "answer_id": event["answer_id"],
                    "persona_id": event["persona_id"],
                    "name": event["name"],
                }
            )

    async def fg_reset(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json({"type": "answer.reset", "answer_id": event["answer_id"]})

    async def fg_run(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json({"type": "autonomous.state", "run": event["run"]})

    async def fg_status(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json({"type": "session.status", "status": event["status"]})

    async def fg_live_themes(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json({"type": "themes.live", "live_themes": event["live_themes"]})

    # --- database ------------------------------------------------------------------------

    @database_sync_to_async
    def _owns(self) -> bool:
        try:
            get_focus_group_for_user(self.scope["user"], self.focus_group_id)
        except Http404:
            return False
        return True

    @database_sync_to_async
    def _between(self, after: int, before: int) -> list[dict]:
        rows = Message.objects.filter(focus_group_id=self.focus_group_id, sequence__gt=after, sequence__lt=before)
        return [message_payload(m) for m in rows.order_by("sequence")[:REPLAY_BATCH]]

    @database_sync_to_async
    def _after(self, last_seq: int):
        messages = [
            message_payload(m)
            for m in Message.objects.filter(focus_group_id=self.focus_group_id, sequence__gt=last_seq).order_by(
                "sequence"
            )[:REPLAY_BATCH]
        ]
        status = FocusGroup.objects.filter(pk=self.focus_group_id).values_list("status", flat=True).first()
        return messages, status, self._streaming(), live_themes_latest(focus_group_id=self.focus_group_id)

    def _streaming(self) -> list[dict]:
        """Answers being written now, each with its text so far: the pending answers of a moderated
        round, and whatever else is streaming (an autonomous turn) from the copies the worker keeps."""
        names = dict(
            Participant.objects.filter(focus_group_id=self.focus_group_id).values_list("persona_id", "persona__name")
        )
        snapshots = stream_snapshots(self.focus_group_id, names)
        if snapshots:  # a copy left by a worker that died after saving the answer is not a stream
            saved = Message.objects.filter(focus_group_id=self.focus_group_id, answer_id__in=list(snapshots))
            for saved_id in saved.values_list("answer_id", flat=True):
                snapshots.pop(str(saved_id), None)
        streaming = {
            str(a["id"]): {"answer_id": str(a["id"]), "persona_id": a["persona_id"], "name": a["persona__name"]}
            for a in Answer.objects.filter(
                focus_group_id=self.focus_group_id, status__in=[AnswerStatus.PENDING, AnswerStatus.STREAMING]
            ).values("id", "persona_id", "persona__name")
        }
        for answer_id, snapshot in snapshots.items():
            entry = streaming.setdefault(answer_id, {"answer_id": answer_id, "persona_id": snapshot["persona_id"]})
            entry["name"] = entry.get("name") or snapshot["name"] or names.get(snapshot["persona_id"], "")
            entry["text"] = snapshot["text"]
        return list(streaming.values())


def _message_event(message: dict) -> str:
    if message["role"] != "persona":
        return "message.new"
    return "message.error" if message["status"] == "failed" else "message.complete"
