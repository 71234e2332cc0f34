"""Per-user websocket for job progress: ``/ws/jobs/``."""

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from cohorta.jobs.events import job_payload, user_group
from cohorta.jobs.selectors import jobs_recent_for_panel
from cohorta.realtime import CLOSE_DISABLED, UserConsumer


class JobConsumer(UserConsumer):
    async def connect(self) -> None:
        if not await self.authenticate():
            return
        self.group = user_group(self.user_id)
        # Subscribe before the snapshot so no update falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_snapshot()

    async def disconnect(self, code) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "jobs.sync":
            await self.send_snapshot()
        else:
            await self.send_json({"type": "error", "code": "unknown_message", "message": "Unknown message type."})

    async def job_update(self, event) -> None:
        # Re-check on every event: the group is per user, but a user disabled
        # after connecting must stop receiving anything.
        if event.get("owner_id") != self.user_id:
            return
        if not await self._user_still_active():
            await self.close(code=CLOSE_DISABLED)
            return
        await self.send_json({"type": "job.update", "job": event["job"]})

    async def usage_quota_warning(self, event) -> None:
        if event.get("owner_id") != self.user_id:
            return
        await self.send_json(
            {
                "type": "quota.warning",
                "percent": event["percent"],
                "spent_usd": event["spent_usd"],
                "limit_usd": event["limit_usd"],
            }
        )

    async def send_snapshot(self) -> None:
        jobs = await self._snapshot()
        await self.send_json({"type": "jobs.snapshot", "jobs": jobs})

    @database_sync_to_async
    def _user_still_active(self) -> bool:
        return get_user_model().objects.filter(pk=self.user_id, is_active=True).exists()

    @database_sync_to_async
    def _snapshot(self) -> list[dict]:
        user = get_user_model().objects.get(pk=self.user_id)
        return [job_payload(job) for job in jobs_recent_for_panel(user=user)]
