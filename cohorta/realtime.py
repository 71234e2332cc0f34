"""What every Cohorta websocket consumer shares: who is connecting, and the close codes."""

import contextlib

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close codes in the private 4000-4999 range, mirroring HTTP where possible.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_DISABLED = 4403
CLOSE_NOT_FOUND = 4404


class UserConsumer(AsyncJsonWebsocketConsumer):
    async def send(self, text_data=None, bytes_data=None, close=False):
        # A client that drops its connection is gone before daphne hands us its
        # websocket.disconnect; an event sent in between raises in daphne's protocol.
        # Nothing is lost (the client replays from its last sequence when it comes
        # back), so the send is dropped and the disconnect that follows ends the consumer.
        with contextlib.suppress(Disconnected):
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def send_json(self, content, close=False):
        # send_json reaches the websocket consumer's send through super(), past the override above.
        with contextlib.suppress(Disconnected):
            await super().send_json(content, close=close)

    async def authenticate(self) -> bool:
        """Keep ``self.user_id`` for an active signed-in user; otherwise close and return False."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.user_id = user.pk
        return True
