"""The durable outbox: survives a restart, dedups, backs off, encrypts, never sends twice."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest

from gateway.accountability.outbox import Message, Outbox, OutboxRetryError

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "test-outbox-secret-" + "o" * 32
NHS = "9434765919"


def _outbox(path: Path, **kwargs: float) -> Outbox:
    return Outbox(str(path / "outbox.db"), SECRET, **kwargs)


class Recorder:
    """A sender that records what it was given and fails while `down` is set."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.down = False

    async def __call__(self, message: Message) -> str:
        if self.down:
            raise OutboxRetryError
        self.received.append(message)
        return f"ack-{len(self.received)}"


async def test_delivers_and_records_the_reference(tmp_path: Path) -> None:
    outbox, sender = _outbox(tmp_path), Recorder()
    outbox.handle("challenge", sender)
    message_id = await outbox.put("challenge", "school", {"nhs": NHS})
    assert message_id is not None
    assert await outbox.drain() == 1
    assert [(m.id, m.destination, m.payload) for m in sender.received] == [
        (message_id, "school", {"nhs": NHS})]
    delivery = await outbox.state(message_id)
    assert delivery is not None
    assert (delivery.state, delivery.reference, delivery.attempts) == ("delivered", "ack-1", 1)
    assert delivery.delivered_at is not None
    assert await outbox.state("no-such-id") is None
    await outbox.close()


async def test_survives_close_and_reopen(tmp_path: Path) -> None:
    first = _outbox(tmp_path)
    message_id = await first.put("challenge", "gp", {"nhs": NHS})
    await first.close()  # no sender: the message stays in the file

    second, sender = _outbox(tmp_path), Recorder()
    second.handle("challenge", sender)
    assert await second.drain() == 1
    assert [m.id for m in sender.received] == [message_id]
    await second.close()


async def test_dedup_key(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    assert await outbox.put("cpis", "cpis", {}, dedup_key="k1") is not None
    assert await outbox.put("cpis", "cpis", {}, dedup_key="k1") is None
    assert await outbox.put("cpis", "cpis", {}, dedup_key="k2") is not None
    await outbox.close()


async def test_backs_off_after_a_failure_and_never_gives_up(tmp_path: Path) -> None:
    outbox, sender = _outbox(tmp_path, poll_seconds=0.05, max_backoff_seconds=0.2), Recorder()
    outbox.handle("challenge", sender)
    sender.down = True
    message_id = await outbox.put("challenge", "council", {"nhs": NHS})
    assert message_id is not None
    assert await outbox.drain() == 0
    assert await outbox.drain() == 0  # not due again yet: backing off
    delivery = await outbox.state(message_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, "RETRY")
    sender.down = False
    outbox.start()
    async with asyncio.timeout(5):
        while not sender.received:
            await asyncio.sleep(0.02)
    delivery = await outbox.state(message_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 2, None)
    await outbox.close()


async def test_a_sender_that_crashes_is_retried(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)

    async def broken(message: Message) -> str:
        raise RuntimeError(message.payload["nhs"])  # its message must not be stored

    outbox.handle("challenge", broken)
    message_id = await outbox.put("challenge", "gp", {"nhs": NHS})
    assert message_id is not None
    await outbox.drain()
    delivery = await outbox.state(message_id)
    assert delivery is not None
    assert (delivery.state, delivery.last_error) == ("pending", "RuntimeError")
    await outbox.close()
    assert NHS.encode() not in _raw(tmp_path)


def _raw(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("outbox.db"))


async def test_payload_encrypted_at_rest_and_deleted_once_delivered(tmp_path: Path) -> None:
    outbox, sender = _outbox(tmp_path), Recorder()
    message_id = await outbox.put("challenge", "gp", {"nhs": NHS, "path": "Child.address"})
    assert NHS.encode() not in _raw(tmp_path)
    assert b"Child.address" not in _raw(tmp_path)
    outbox.handle("challenge", sender)
    await outbox.drain()
    await outbox.close()
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        rows = conn.execute("SELECT id, payload FROM outbox").fetchall()
    assert rows == [(message_id, None)]


async def test_two_outboxes_on_one_file_never_deliver_one_message_twice(tmp_path: Path) -> None:
    writer = _outbox(tmp_path)
    ids = {await writer.put("challenge", "gp", {"n": n}) for n in range(60)}
    received: list[str] = []

    async def slow(message: Message) -> str:
        await asyncio.sleep(0.001)
        received.append(message.id)
        return "ok"

    workers = [_outbox(tmp_path) for _ in range(2)]
    for worker in workers:
        worker.handle("challenge", slow)
    counts = await asyncio.gather(*(w.drain() for w in workers), *(w.drain() for w in workers))
    assert sum(counts) == 60
    assert sorted(received) == sorted(ids)  # each exactly once
    for outbox in (writer, *workers):
        await outbox.close()


async def test_a_message_of_an_unhandled_kind_waits(tmp_path: Path) -> None:
    outbox, sender = _outbox(tmp_path), Recorder()
    outbox.handle("challenge", sender)
    message_id = await outbox.put("notification", "cpis", {})
    assert await outbox.drain() == 0
    delivery = await outbox.state(message_id or "")
    assert delivery is not None
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    await outbox.close()


@pytest.mark.parametrize("secret", ["another-secret-" + "x" * 32])
async def test_another_key_cannot_read_the_payload(tmp_path: Path, secret: str) -> None:
    first = _outbox(tmp_path)
    message_id = await first.put("challenge", "gp", {"nhs": NHS})
    await first.close()
    other = Outbox(str(tmp_path / "outbox.db"), secret)
    other.handle("challenge", Recorder())
    assert await other.drain() == 0
    delivery = await other.state(message_id or "")
    assert delivery is not None
    assert (delivery.state, delivery.last_error) == ("pending", "InvalidTag")
    await other.close()


async def test_closing_during_a_hung_send_gives_the_message_back(tmp_path: Path) -> None:
    first = _outbox(tmp_path, poll_seconds=0.05)
    started = asyncio.Event()

    async def hangs(message: Message) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    first.handle("challenge", hangs)
    message_id = await first.put("challenge", "gp", {"nhs": NHS})
    first.start()
    async with asyncio.timeout(5):
        await started.wait()
    await first.close()  # cancels the send after its grace period; the lease is released

    second, sender = _outbox(tmp_path), Recorder()
    second.handle("challenge", sender)
    assert await second.drain() == 1  # at once, not after the lease would have run out
    assert [m.id for m in sender.received] == [message_id]
    await second.close()
