"""`connectors.slots.Slots`: in turn, no slot lost to a cancellation, none taken out of turn."""

from __future__ import annotations

import asyncio

import pytest

from connectors.slots import Slots


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_free_slot_is_taken_at_once_and_given_back():
    slots = Slots(2)
    await slots.take()
    await slots.take()
    assert (slots.free, slots.waiting) == (0, 0)
    slots.give()
    slots.give()
    assert slots.free == 2


def test_at_least_one_slot():
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


async def test_waiters_are_served_in_the_order_they_came():
    slots = Slots(1)
    await slots.take()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await slots.take()
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(4)]
    await _settle()
    assert slots.waiting == 4
    for _ in range(4):
        slots.give()
        await _settle()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert (slots.free, slots.waiting) == (0, 0)  # the last waiter still holds its slot


async def test_a_freed_slot_goes_to_the_waiter_not_to_a_newcomer():
    slots = Slots(1)
    await slots.take()
    waited = asyncio.create_task(slots.take())
    await _settle()
    slots.give()  # handed to `waited`, which has not run yet
    assert slots.free == 0
    newcomer = asyncio.create_task(slots.take())
    await _settle()
    assert waited.done()
    assert not newcomer.done()  # behind, although it asked while the slot was in transit
    slots.give()
    await newcomer


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_nothing():
    slots = Slots(1)
    await slots.take()
    gone = asyncio.create_task(slots.take())
    stays = asyncio.create_task(slots.take())
    await _settle()
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting == 1
    slots.give()
    await stays
    slots.give()
    assert (slots.free, slots.waiting) == (1, 0)


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_it_on():
    slots = Slots(1)
    await slots.take()
    handed = asyncio.create_task(slots.take())
    nxt = asyncio.create_task(slots.take())
    await _settle()
    slots.give()  # `handed` is given the slot ...
    handed.cancel()  # ... and cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed
    await nxt  # the slot went on instead of being lost
    slots.give()
    assert (slots.free, slots.waiting) == (1, 0)


async def test_a_waiter_cancelled_after_give_skipped_it_is_not_removed_twice():
    slots = Slots(1)
    await slots.take()
    gone = asyncio.create_task(slots.take())
    await _settle()
    gone.cancel()  # its future is cancelled now; its task has not run yet
    slots.give()  # skips the cancelled waiter and frees the slot
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert (slots.free, slots.waiting) == (1, 0)


async def test_a_timeout_around_a_wait_leaves_the_count_whole():
    slots = Slots(2)
    await slots.take()
    await slots.take()
    for _ in range(5):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await slots.take()
    assert slots.waiting == 0
    slots.give()
    slots.give()
    assert slots.free == 2
