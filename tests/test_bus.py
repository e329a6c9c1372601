"""EventBus: fan-out to screens without ever blocking the decision path."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kiosk.bus import EventBus


def test_every_subscriber_gets_each_message_in_order():
    async def main():
        bus = EventBus()
        a, b = bus.subscribe(), bus.subscribe()
        bus.publish({"type": "decision", "n": 1})
        bus.publish({"type": "alarm", "n": 2})
        return [await a.get(), await a.get()], [await b.get(), await b.get()]

    got_a, got_b = asyncio.run(main())
    assert [m["n"] for m in got_a] == [1, 2]
    assert got_a == got_b


def test_slow_subscriber_is_dropped_and_told_while_others_keep_receiving():
    bus = EventBus(maxsize=3)
    slow = bus.subscribe(name="frozen-tab")
    fast = bus.subscribe()
    for n in range(3):
        bus.publish({"type": "decision", "n": n})
        assert fast.get_nowait()["n"] == n
    bus.publish({"type": "decision", "n": 3})  # slow is full: dropped, not waited for
    assert slow.dropped
    assert bus.subscribers == 1
    assert bus.dropped_total == 1
    assert slow.get_nowait() == {"type": "dropped", "reason": "slow"}
    assert slow.get_nowait() is None
    assert fast.get_nowait()["n"] == 3


def test_publish_returns_at_once_even_with_a_full_subscriber():
    bus = EventBus(maxsize=1)
    bus.subscribe()
    for n in range(1000):
        bus.publish({"type": "state", "n": n})
    assert bus.published_total == 1000


def test_late_subscriber_sees_current_state_and_health_first():
    bus = EventBus()
    bus.publish({"type": "state", "state": "measuring"})
    bus.publish({"type": "decision", "decision": "pass"})
    bus.publish({"type": "health", "degraded": []})
    sub = bus.subscribe()
    assert sub.get_nowait() == {"type": "state", "state": "measuring"}
    assert sub.get_nowait() == {"type": "health", "degraded": []}
    assert sub.get_nowait() is None


def test_iteration_ends_after_the_dropped_message():
    async def main():
        bus = EventBus(maxsize=1)
        sub = bus.subscribe()
        bus.publish({"type": "alarm"})
        bus.publish({"type": "alarm"})
        return [m async for m in sub]

    assert asyncio.run(main()) == [{"type": "dropped", "reason": "slow"}]


def test_waiting_subscriber_wakes_on_publish_and_on_close():
    async def main():
        bus = EventBus()
        sub = bus.subscribe()
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        bus.publish({"type": "decision"})
        first = await waiter
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        sub.close()
        return first, await waiter, bus.subscribers

    first, after_close, count = asyncio.run(main())
    assert first == {"type": "decision"}
    assert after_close is None
    assert count == 0


def test_publish_threadsafe_hops_onto_the_loop():
    async def main():
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        sub = bus.subscribe()
        t = threading.Thread(target=bus.publish_threadsafe, args=({"type": "health"},))
        t.start()
        t.join()
        return await asyncio.wait_for(sub.get(), 2)

    assert asyncio.run(main()) == {"type": "health"}


def test_message_without_type_is_refused():
    with pytest.raises(ValueError, match="type"):
        EventBus().publish({"decision": "pass"})
