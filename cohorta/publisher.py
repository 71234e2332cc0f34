"""Sends channel-layer events from sync code without blocking it.

``async_to_sync(layer.group_send)`` from a worker thread starts a new event
loop per call (and, with channels-redis, a new connection): far too slow for
a token delta. Instead each process has one publisher thread with its own
loop; callers enqueue and return at once, and a single consumer task sends in
order (FIFO), so events for one session never overtake each other."""

import asyncio
import atexit
import logging
import threading
import time

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict = {"loop": None, "queue": None, "thread": None}


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    queue: asyncio.Queue = asyncio.Queue()
    _state["queue"] = queue

    async def drain() -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < MAX_BATCH:
                batch.append(queue.get_nowait())
            for group, event, done in coalesce(batch):
                try:
                    layer = get_channel_layer() if group is not None else None  # None: a flush marker
                    if layer is not None:
                        if "t" in event:
                            event = {**event, "sent_at": time.time()}  # diagnostics: when it left this process
                        await layer.group_send(group, event)
                except Exception:  # best effort: clients catch up from the database
                    logger.warning("Could not publish %s to %s", event.get("type"), group, exc_info=True)
                finally:
                    for flag in done:
                        flag.set()

    loop.create_task(drain())
    ready.set()
    loop.run_forever()


MAX_BATCH = 500


def coalesce(batch: list[tuple]) -> list[tuple]:
    """Merge queued token deltas per answer. Under light load the queue holds one event at a
    time and nothing is merged; under load (several answers streaming at once) this keeps
    delivery from falling behind. Deltas of one answer stay in order, and any other event
    (a saved message, typing, reset) is a barrier nothing moves across. A merged event keeps
    its first token's timestamp."""
    merged: list[tuple] = []
    open_deltas: dict[tuple, int] = {}  # (group, answer_id) -> index in merged, since the last barrier
    for group, event, done in batch:
        flags = [done] if done is not None else []
        if event.get("type") != "fg.delta":
            open_deltas.clear()
            merged.append((group, event, flags))
            continue
        key = (group, event.get("answer_id"))
        if key in open_deltas:
            index = open_deltas[key]
            _, first, first_flags = merged[index]
            merged[index] = (group, {**first, "delta": first["delta"] + event["delta"]}, first_flags + flags)
        else:
            open_deltas[key] = len(merged)
            merged.append((group, event, flags))
    return merged


def publisher_start() -> asyncio.AbstractEventLoop:
    loop = _state["loop"]
    if loop is not None and _state["thread"].is_alive():
        return loop
    with _lock:
        if _state["loop"] is None or not _state["thread"].is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(target=_run, args=(loop, ready), name="cohorta-publisher", daemon=True)
            _state.update(loop=loop, thread=thread)
            thread.start()
            ready.wait(timeout=5)
            if not _state.get("atexit"):
                # A short-lived process (a management command, a shell) must not exit with events still
                # queued: the publisher is a daemon thread and would die with them.
                atexit.register(flush)
                _state["atexit"] = True
    return _state["loop"]


def flush() -> None:
    """Wait until every event queued so far has been handed to the channel layer: the queue is FIFO, so
    waiting for a marker (group None, sent nowhere) is waiting for everything before it."""
    if _state["loop"] is not None and _state["thread"].is_alive():
        publish(None, {}, wait=True)


def publish(group: str | None, event: dict, *, wait: bool = False) -> None:
    """Queue ``event`` for ``group``. With ``wait``, block until it was handed to the layer."""
    loop = publisher_start()
    done = threading.Event() if wait else None
    loop.call_soon_threadsafe(_state["queue"].put_nowait, (group, event, done))
    if done is not None:
        done.wait(timeout=5)
