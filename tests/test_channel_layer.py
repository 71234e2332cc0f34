import asyncio
import threading
import time

from asgiref.sync import async_to_sync

from cohorta.channel_layers import ThreadSafeInMemoryChannelLayer


async def test_group_send_from_a_worker_thread_wakes_the_receiver_at_once():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    receiver = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let the receiver start waiting on this loop

    def worker():
        async_to_sync(layer.group_send)("user.1", {"type": "job.update", "n": 1})

    started = time.perf_counter()
    thread = threading.Thread(target=worker)
    thread.start()
    message = await asyncio.wait_for(receiver, timeout=2)
    elapsed = time.perf_counter() - started
    await asyncio.to_thread(thread.join, 2)  # joining on the loop would block the hand-over
    assert message == {"type": "job.update", "n": 1}
    assert elapsed < 1.0


async def test_same_loop_sends_still_work():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "x"})
    assert await asyncio.wait_for(layer.receive(channel), timeout=1) == {"type": "x"}
