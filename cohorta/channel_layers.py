"""A thread-safe in-memory channel layer for embedded mode.

Channels' ``InMemoryChannelLayer`` keeps ``asyncio.Queue`` objects that belong
to the server's event loop. A ``group_send`` from a worker thread (through
``async_to_sync``) runs on a different, short-lived loop: the message is
queued without waking the server's loop, so it arrives late, in bursts, or
never. This subclass remembers the loop its consumers receive on and hands
every send from another thread over to that loop.
"""

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home_loop: asyncio.AbstractEventLoop | None = None

    def _remember_loop(self) -> None:
        self._home_loop = asyncio.get_running_loop()

    def _foreign_home_loop(self) -> asyncio.AbstractEventLoop | None:
        """The consumers' loop when we are running on another one, else None."""
        home = self._home_loop
        if home is None or home.is_closed() or not home.is_running():
            return None
        if home is asyncio.get_running_loop():
            return None
        return home

    async def _on_home_loop(self, coro: Any) -> Any:
        home = self._foreign_home_loop()
        if home is None:
            return await coro
        future = asyncio.run_coroutine_threadsafe(coro, home)
        return await asyncio.wrap_future(future)

    async def receive(self, channel: str) -> dict:
        self._remember_loop()
        return await super().receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        self._remember_loop()
        await self._on_home_loop(super().group_add(group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        await self._on_home_loop(super().group_discard(group, channel))

    async def send(self, channel: str, message: dict) -> None:
        await self._on_home_loop(super().send(channel, message))

    async def group_send(self, group: str, message: dict) -> None:
        await self._on_home_loop(super().group_send(group, message))
