"""The live discussion socket: ``/ws/focus-groups/<id>/``.

Owner only, checked on connect and again (at most every few seconds) as
events flow. Subscribe first, then replay: the client sends
``{"type": "hello", "last_seq": N}`` and gets every saved message after N from
the database before live events; it dedupes by sequence number."""

import time

from channels.db import database_sync_to_async

from cohorta.realtime import CLOSE_NOT_FOUND, UserConsumer
from focusgroups.access import user_owns_focus_group
from focusgroups.events import group_name, message_payload
from focusgroups.models import Answer, AnswerStatus, FocusGroup, Message

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
            batch, status, streaming = await self._after(last_seq)
            for message in batch:
                await self.send_json({"type": _message_event(message), "message": message, "replayed": True})
                last_seq = message["sequence"]
            if len(batch) < REPLAY_BATCH:
                break
        await self.send_json({"type": "replay.done", "last_seq": last_seq, "status": status, "streaming": streaming})

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
            await self.send_json({"type": _message_event(event["message"]), "message": event["message"]})

    async def fg_delta(self, event) -> None:
        if event.get("focus_group_id") == self.focus_group_id and await self._allowed():
            await self.send_json(
                {
                    "type": "token.delta",
                    "answer_id": event["answer_id"],
                    "persona_id": event["persona_id"],
                    "delta": event["delta"],
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

    # --- database ------------------------------------------------------------------------

    @database_sync_to_async
    def _owns(self) -> bool:
        return user_owns_focus_group(user_id=self.user_id, focus_group_id=self.focus_group_id)

    @database_sync_to_async
    def _after(self, last_seq: int):
        messages = [
            message_payload(m)
            for m in Message.objects.filter(focus_group_id=self.focus_group_id, sequence__gt=last_seq).order_by(
                "sequence"
            )[:REPLAY_BATCH]
        ]
        status = FocusGroup.objects.filter(pk=self.focus_group_id).values_list("status", flat=True).first()
        streaming = [
            {"answer_id": str(a["id"]), "persona_id": a["persona_id"], "name": a["persona__name"]}
            for a in Answer.objects.filter(
                focus_group_id=self.focus_group_id, status__in=[AnswerStatus.PENDING, AnswerStatus.STREAMING]
            ).values("id", "persona_id", "persona__name")
        ]
        return messages, status, streaming


def _message_event(message: dict) -> str:
    if message["role"] != "persona":
        return "message.new"
    return "message.error" if message["status"] == "failed" else "message.complete"
