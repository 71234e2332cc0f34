"""What every Cohorta websocket consumer shares: who is connecting, and the close codes."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close codes in the private 4000-4999 range, mirroring HTTP where possible.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_DISABLED = 4403
CLOSE_NOT_FOUND = 4404


class UserConsumer(AsyncJsonWebsocketConsumer):
    async def authenticate(self) -> bool:
        """Keep ``self.user_id`` for an active signed-in user; otherwise close and return False."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.user_id = user.pk
        return True
