from cohorta.publisher import coalesce


def test_back_to_back_deltas_of_one_answer_are_merged_in_order():
    batch = [
        ("g", {"type": "fg.delta", "answer_id": "a", "delta": "Hel", "t": 1.0}, None),
        ("g", {"type": "fg.delta", "answer_id": "a", "delta": "lo", "t": 2.0}, None),
        ("g", {"type": "fg.delta", "answer_id": "b", "delta": "Hi", "t": 3.0}, None),
        ("g", {"type": "fg.message", "message": {"sequence": 5}}, None),
        ("g", {"type": "fg.delta", "answer_id": "a", "delta": "!", "t": 4.0}, None),
    ]
    merged = coalesce(batch)
    assert [event.get("delta") for _, event, _ in merged] == ["Hello", "Hi", None, "!"]
    assert merged[0][1]["t"] == 1.0  # latency is measured from the first token


def test_interleaved_answers_merge_per_answer_but_never_across_a_barrier():
    def delta(answer, text):
        return ("g", {"type": "fg.delta", "answer_id": answer, "delta": text}, None)

    batch = [
        delta("a", "1"),
        delta("b", "x"),
        delta("a", "2"),
        delta("b", "y"),
        ("g", {"type": "fg.message", "message": {"answer_id": "a"}}, None),
        delta("b", "z"),
    ]
    merged = [(event["type"], event.get("answer_id"), event.get("delta")) for _, event, _ in coalesce(batch)]
    assert merged == [
        ("fg.delta", "a", "12"),
        ("fg.delta", "b", "xy"),
        ("fg.message", None, None),
        ("fg.delta", "b", "z"),
    ]


def test_flush_returns_once_everything_queued_has_reached_the_layer(monkeypatch):
    import asyncio

    from cohorta import publisher

    sent = []

    class SlowLayer:
        async def group_send(self, group, event):
            await asyncio.sleep(0.05)
            sent.append((group, event["n"]))

    monkeypatch.setattr(publisher, "get_channel_layer", lambda: SlowLayer())
    for n in range(3):
        publisher.publish("fg", {"type": "fg.status", "n": n})
    assert len(sent) < 3  # still on its way
    publisher.flush()
    assert sent == [("fg", 0), ("fg", 1), ("fg", 2)]
    # A management command or shell that published flushes the same way at exit.
    assert publisher._state["atexit"] is True
