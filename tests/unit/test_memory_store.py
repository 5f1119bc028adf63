"""The in-process cache store (the demo's default when no Redis is configured)."""

from gateway.cache import MemoryStore


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


async def test_entries_expire_after_their_ttl():
    clock = Clock()
    store = MemoryStore(10, clock)
    await store.set_many([("a", b"1", 5.0), ("b", b"2", 50.0)])
    assert await store.get_many(["a", "b", "c"]) == [b"1", b"2", None]
    clock.now += 6
    assert await store.get_many(["a", "b"]) == [None, b"2"]


async def test_bounded_least_recently_written_goes_first():
    store = MemoryStore(2, Clock())
    await store.set_many([("a", b"1", 30), ("b", b"2", 30), ("c", b"3", 30)])
    assert await store.get_many(["a", "b", "c"]) == [None, b"2", b"3"]
    await store.delete_many(["b"])
    assert await store.get_many(["b"]) == [None]
    assert await store.ping()
