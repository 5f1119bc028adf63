"""`verify_log` on both stores: an untouched log passes; each kind of tampering is named.

Every test writes a real log through the gateway's writer, then edits the
database directly (as an attacker with database access would), then verifies.
"""

import asyncio
import io
import json

import pytest

from gateway.accountability.audit import export_log, open_audit_log, open_store, verify_log
from gateway.accountability.audit.checkpoints import CheckpointKey
from tests.audit.helpers import event


async def write_log(backend, count=12, **values):
    log = await open_audit_log(backend.settings(**values))
    try:
        for i in range(1, count + 1):
            await log.record([event(i)])
    finally:
        await log.close()


async def verdict(backend, **values):
    audit = backend.settings(**values)
    store = open_store(audit, read_only=True)
    try:
        return await verify_log(store, CheckpointKey.from_settings(audit), audit.checkpoint_every)
    finally:
        await store.close()


async def problem(backend):
    result = await verdict(backend)
    assert result.problem is not None, result.line()
    return result.problem.seq, result.problem.kind


async def test_untouched_log_verifies(backend):
    await write_log(backend)
    result = await verdict(backend)
    assert result.ok
    assert result.line() == "ok: 12 events, 2 checkpoints"


async def test_empty_log_verifies(backend):
    await write_log(backend, count=0)
    if backend.name == "sqlite":  # the writer never opened the file: nothing to read
        await write_log(backend, count=1)
        assert (await verdict(backend)).line() == "ok: 1 events, 0 checkpoints"
    else:
        assert (await verdict(backend)).line() == "ok: 0 events, 0 checkpoints"


async def test_modified_event(backend):
    await write_log(backend)
    await backend.tamper.modify(7)
    assert await problem(backend) == (7, "modified")


async def test_modified_index_column(backend):
    await write_log(backend)
    await backend.tamper.execute("UPDATE {events} SET child = $1 WHERE seq = $2",
                                 "0" * 64, 4)
    assert await problem(backend) == (4, "modified")


async def test_modified_chain_hash(backend):
    await write_log(backend)
    await backend.tamper.execute(
        "UPDATE {events} SET chain_hash = $1 WHERE seq = $2", b"\x07" * 32, 3)
    assert await problem(backend) == (3, "modified")


async def test_modified_and_rechained_is_caught_by_the_checkpoint(backend):
    await write_log(backend)
    await backend.tamper.modify(3)
    await backend.tamper.rechain_from(3)
    result = await verdict(backend)
    assert (result.problem.seq, result.problem.kind) == (5, "modified")
    assert "rewritten" in result.problem.detail


async def test_deleted_event(backend):
    await write_log(backend)
    await backend.tamper.delete(6)
    assert await problem(backend) == (6, "deleted")


async def test_deleted_event_with_later_ones_renumbered(backend):
    await write_log(backend)
    await backend.tamper.delete(6)
    await backend.tamper.shift_from(7, -1)
    assert await problem(backend) == (6, "deleted")


async def test_deleted_tail_is_caught_by_the_checkpoint(backend):
    await write_log(backend)
    for seq in (9, 10, 11, 12):
        await backend.tamper.delete(seq)
    assert await problem(backend) == (9, "deleted")


async def test_inserted_event(backend):
    await write_log(backend)
    forged = event(99)
    await backend.tamper.insert_forged(4, forged)
    assert await problem(backend) == (4, "inserted")


async def test_appended_event_that_does_not_link(backend):
    await write_log(backend, count=11)
    await backend.tamper.insert_row(12, event(99), b"\x05" * 32)
    assert await problem(backend) == (12, "inserted")


async def test_inserted_event_with_a_made_up_link(backend):
    await write_log(backend)
    await backend.tamper.shift_from(8, 1)
    await backend.tamper.insert_row(8, event(99), b"\x05" * 32)
    assert await problem(backend) == (8, "inserted")


@pytest.mark.parametrize(("a", "b"), [(8, 9), (2, 11)])
async def test_swapped_events(backend, a, b):
    await write_log(backend)
    await backend.tamper.swap(a, b)
    assert await problem(backend) == (a, "reordered")


async def test_swapped_contents(backend):
    await write_log(backend)
    tamper = backend.tamper
    first, second = str((await tamper.row(3))[3]), str((await tamper.row(4))[3])
    await tamper.execute("UPDATE {events} SET body = $1 WHERE seq = $2", second, 3)
    await tamper.execute("UPDATE {events} SET body = $1 WHERE seq = $2", first, 4)
    result = await verdict(backend)
    assert (result.problem.seq, result.problem.kind) == (3, "reordered")
    assert result.problem.detail == "it holds the content of event 4"


async def test_checkpoint_signature_tampered(backend):
    await write_log(backend)
    await backend.tamper.corrupt_signature(10)
    assert await problem(backend) == (10, "bad checkpoint signature")


async def test_checkpoint_from_another_key(backend, tmp_path):
    await write_log(backend)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = tmp_path / "other.pem"
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    result = await verdict(backend, checkpoint_key_file=str(path))
    assert (result.problem.seq, result.problem.kind) == (5, "bad checkpoint signature")


async def test_deleted_checkpoint(backend):
    await write_log(backend)
    await backend.tamper.execute("DELETE FROM {checkpoints} WHERE seq = $1", 5)
    assert await problem(backend) == (10, "checkpoint missing")
    await backend.tamper.execute("DELETE FROM {checkpoints} WHERE seq = $1", 10)
    assert await problem(backend) == (5, "checkpoint missing")


async def test_export_writes_json_lines(backend):
    await write_log(backend)
    store = open_store(backend.settings(), read_only=True)
    try:
        out = io.StringIO()
        assert await export_log(store, out) == 12
        fhir = io.StringIO()
        assert await export_log(store, fhir, fhir=True) == 12
    finally:
        await store.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    events = [line for line in lines if line["type"] == "event"]
    assert [e["seq"] for e in events] == list(range(1, 13))
    assert events[0]["event"] == event(1).to_json()
    assert [c["seq"] for c in lines if c["type"] == "checkpoint"] == [5, 10]
    assert lines[5]["type"] == "checkpoint"  # right after the event it signs
    resources = [json.loads(line) for line in fhir.getvalue().splitlines()]
    assert {r["resourceType"] for r in resources} == {"AuditEvent"}


async def test_verify_a_log_that_is_being_written(backend):
    await write_log(backend, count=3)
    log = await open_audit_log(backend.settings())
    writing = True

    async def keep_writing():
        i = 100
        while writing:
            await log.record([event(i)])
            i += 1

    writer = asyncio.create_task(keep_writing())
    try:
        for _ in range(5):
            result = await verdict(backend)
            assert result.ok, result.line()
            await asyncio.sleep(0.01)
    finally:
        writing = False
        await writer
        await log.close()
    assert (await verdict(backend)).ok


async def test_content_that_is_not_an_event(backend):
    await write_log(backend)
    await backend.tamper.execute("UPDATE {events} SET body = $1 WHERE seq = $2", "garbage{", 5)
    assert await problem(backend) == (5, "modified")
    store = open_store(backend.settings(), read_only=True)
    try:
        out = io.StringIO()
        await export_log(store, out)
    finally:
        await store.close()
    assert json.loads(out.getvalue().splitlines()[4])["event"] == "garbage{"
