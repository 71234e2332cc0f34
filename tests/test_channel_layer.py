import asyncio
import threading

from asgiref.sync import async_to_sync

from cohorta.channel_layers import ThreadSafeInMemoryChannelLayer


def test_group_send_from_a_worker_thread_wakes_the_receiver_at_once():
    # In debug mode asyncio raises when another thread schedules on a loop without call_soon_threadsafe: the
    # unsafe hand-over that left a receiver asleep until something else woke its loop, caught without timing
    # how long it slept. The consumers' loop runs in a thread of this test, so that a receiver such a
    # hand-over leaves stuck cannot hang the test's own loop at teardown.
    home = asyncio.new_event_loop()
    home.set_debug(True)
    home_thread = threading.Thread(target=home.run_forever, daemon=True)
    home_thread.start()

    def on_home(coro):
        return asyncio.run_coroutine_threadsafe(coro, home)

    try:
        layer = ThreadSafeInMemoryChannelLayer()
        channel = on_home(layer.new_channel()).result(10)
        on_home(layer.group_add("user.1", channel)).result(10)
        receiving = on_home(layer.receive(channel))
        on_home(asyncio.sleep(0)).result(10)  # the receiver is now waiting on its loop
        failures: list[Exception] = []

        def worker():
            try:
                async_to_sync(layer.group_send)("user.1", {"type": "job.update", "n": 1})
            except Exception as exc:  # reported by the assert below
                failures.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(30)
        assert failures == []
        assert receiving.result(30) == {"type": "job.update", "n": 1}
    finally:
        home.call_soon_threadsafe(home.stop)
        home_thread.join(10)
        home.close()


async def test_same_loop_sends_still_work():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "x"})
    assert await asyncio.wait_for(layer.receive(channel), timeout=1) == {"type": "x"}
