"""Checkpoints published outside the store: a log cut short is caught with the public key only.

An attacker with database access deletes the newest events *and* their
checkpoints; the shorter log is consistent by itself. Each test writes a real log
through the gateway's writer (which publishes to the checkpoint file), tampers
with the database directly, then verifies with a `CheckpointVerifier` built from
the exported public PEM, never the private key.
"""

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.accountability.audit import open_audit_log, open_store, verify_log
from gateway.accountability.audit.checkpoints import CheckpointKey, CheckpointVerifier
from gateway.accountability.audit.published import read_published
from gateway.settings import ConfigError
from gateway.web.cli import main
from tests.audit.helpers import ROOT, SECRET, event
from tests.audit.test_cli import write_config


def published_settings(backend, tmp_path, **values):
    # A timer too slow to fire in a test: the checkpoint on close covers the newest events.
    return backend.settings(**{"checkpoint_file": str(tmp_path / "checkpoints.jsonl"),
                               "checkpoint_interval_seconds": 60, **values})


async def write_log(audit, count, batch=1):
    log = await open_audit_log(audit)
    try:
        for start in range(1, count + 1, batch):
            await log.record([event(i) for i in range(start, min(start + batch, count + 1))])
    finally:
        await log.close()


def public_only(audit):
    """The verifier an outside auditor has: built from the exported PEM alone."""
    return CheckpointVerifier.from_pem(CheckpointKey.from_settings(audit).public_pem().encode())


async def verdict(audit, *, published=True):
    store = open_store(audit, read_only=True)
    lines = read_published(Path(audit.checkpoint_file)) if published else ()
    try:
        return await verify_log(store, public_only(audit), audit.checkpoint_every, lines)
    finally:
        await store.close()


@pytest.mark.parametrize(("count", "every", "batch", "cut"), [
    (12, 5, 1, 1),
    (1_203, 100, 100, 1_000),
], ids=["cut-by-1", "cut-by-1000"])
async def test_a_log_cut_short_is_detected(backend, tmp_path, count, every, batch, cut):
    audit = published_settings(backend, tmp_path, checkpoint_every=every)
    await write_log(audit, count, batch)
    first_gone = count - cut + 1
    await backend.tamper.cut_from(first_gone)
    # The store alone is consistent: this is the gap the published file closes.
    assert (await verdict(audit, published=False)).ok
    result = await verdict(audit)
    assert result.problem is not None, result.line()
    assert (result.problem.seq, result.problem.kind) == (first_gone, "cut short")
    assert f"events {first_gone} to {count} were deleted" in result.problem.detail


async def test_an_untouched_log_verifies_against_the_published_file(backend, tmp_path):
    audit = published_settings(backend, tmp_path)
    await write_log(audit, 12)
    lines = read_published(Path(audit.checkpoint_file))
    assert [entry.checkpoint.seq for entry in lines] == [5, 10, 12]  # 12: signed on close
    assert all(entry.events == entry.checkpoint.seq for entry in lines)
    result = await verdict(audit)
    assert result.line() == "ok: 12 events, 3 checkpoints, 3 published checkpoints match"


def _forge_seq(line):
    line["seq"] = line["events"] = 50


def _forge_head(line):
    line["head"] = "ab" * 32


def _forge_key(line):
    other = CheckpointKey(ed25519.Ed25519PrivateKey.generate())
    checkpoint = other.sign(50, 12, 5, b"\xab" * 32)
    line.update(seq=50, events=50, head=checkpoint.chain_hash.hex(), key_id=checkpoint.key_id,
                signature=checkpoint.signature.hex())


@pytest.mark.parametrize("forge", [_forge_seq, _forge_head, _forge_key])
async def test_a_forged_checkpoint_line_is_detected(backend, tmp_path, forge):
    audit = published_settings(backend, tmp_path)
    await write_log(audit, 12)
    path = Path(audit.checkpoint_file)
    lines = path.read_text().splitlines()
    line = json.loads(lines[-1])
    forge(line)
    path.write_text("\n".join([*lines, json.dumps(line)]) + "\n")
    result = await verdict(audit)
    assert result.problem is not None, result.line()
    assert result.problem.kind == "forged checkpoint"
    assert "line 4 of the checkpoint file" in result.problem.detail


async def test_a_rewritten_tail_does_not_match_its_published_head(backend, tmp_path):
    audit = published_settings(backend, tmp_path)
    await write_log(audit, 12)
    # Rewrite events 11-12 and drop the in-store checkpoint that covered them.
    await backend.tamper.modify(11)
    await backend.tamper.rechain_from(11)
    await backend.tamper.execute("DELETE FROM {checkpoints} WHERE seq > 10")
    assert (await verdict(audit, published=False)).ok
    result = await verdict(audit)
    assert result.problem is not None, result.line()
    assert (result.problem.seq, result.problem.kind) == (12, "modified")
    assert "published checkpoint on line 3" in result.problem.detail


def newest_published(path):
    """The newest seq in the file so far; 0 before its first whole line is written."""
    text = path.read_text() if path.exists() else ""
    whole = text[:text.rfind("\n") + 1].splitlines()
    return json.loads(whole[-1])["seq"] if whole else 0


async def test_the_timer_signs_and_publishes_the_newest_events(backend, tmp_path):
    audit = published_settings(backend, tmp_path, checkpoint_interval_seconds=0.05)
    path = Path(audit.checkpoint_file)
    log = await open_audit_log(audit)
    try:
        await log.record([event(i) for i in range(1, 8)])  # 5 by count; 6-7 only by the timer
        deadline = time.monotonic() + 5
        while newest_published(path) != 7:
            assert time.monotonic() < deadline, "no timer checkpoint within 5 s"
            await asyncio.sleep(0.01)
    finally:
        await log.close()
    assert [entry.checkpoint.seq for entry in read_published(path)] == [5, 7]
    await backend.tamper.cut_from(7)
    result = await verdict(audit)
    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (7, "cut short")


async def test_the_file_is_private_and_only_appended_to(sqlite_backend, tmp_path):
    audit = published_settings(sqlite_backend, tmp_path)
    await write_log(audit, 6)
    await write_log(audit, 6)  # a restart: earlier lines stay
    path = Path(audit.checkpoint_file)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [entry.checkpoint.seq for entry in read_published(path)] == [5, 6, 10, 12]
    assert (await verdict(audit)).ok


async def test_a_publishing_failure_is_logged_and_releases_nothing_late(sqlite_backend, tmp_path,
                                                                     caplog):
    audit = sqlite_backend.settings(checkpoint_file=str(tmp_path / "missing-dir" / "c.jsonl"))
    with caplog.at_level(logging.ERROR, "contactpoint.audit"):
        await write_log(audit, 6)  # the events are durable; recording does not fail
    assert "audit checkpoints 5 not published" in caplog.text
    assert "9990000018" not in caplog.text


def _cli(argv):
    return main(argv)


def test_cli_verifies_with_the_public_key_only(sqlite_backend, tmp_path, capsys):
    audit = published_settings(sqlite_backend, tmp_path)
    asyncio.run(write_log(audit, 12))
    writer = write_config(tmp_path / "gateway.toml", {
        "pseudonym_secret": SECRET, "checkpoint_every": 5, **sqlite_backend.options})
    assert _cli(["audit", "public-key", "--config", str(writer)]) == 0
    pem = tmp_path / "audit-public.pem"
    pem.write_text(capsys.readouterr().out)
    # The same, as a user runs it.
    shown = subprocess.run([sys.executable, "-m", "gateway.web.cli",
                            "audit", "public-key", "--config", str(writer)],
                           cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    assert shown.stdout == pem.read_text()
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    # The auditor's configuration holds no secret of the gateway's: another pseudonym secret.
    auditor = write_config(tmp_path / "auditor.toml", {
        "pseudonym_secret": "x" * 32, "checkpoint_every": 5, **sqlite_backend.options})
    checkpoints = str(Path(audit.checkpoint_file))
    verify = ["audit", "verify", "--config", str(auditor), "--public-key", str(pem),
              "--checkpoints", checkpoints]
    assert _cli(verify) == 0
    ok = "ok: 12 events, 3 checkpoints, 3 published checkpoints match\n"
    assert capsys.readouterr().out == ok
    # Without the public key the auditor's (wrong) secret cannot verify a single signature.
    assert _cli(verify[:4] + verify[6:]) == 1
    capsys.readouterr()
    asyncio.run(sqlite_backend.tamper.cut_from(12))
    assert _cli(verify) == 1
    assert capsys.readouterr().out.startswith("bad: event 12: cut short (the log ends at event 11")
    with open(checkpoints, "a") as out:
        out.write('{"seq": 13, "torn\n')
    assert _cli(verify) == 1
    assert "line 4 of the checkpoint file is not a checkpoint" in capsys.readouterr().out
    assert _cli([*verify[:-1], str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read checkpoint file" in capsys.readouterr().err
    assert _cli([*verify[:5], str(tmp_path / "missing.pem")]) == 2
    assert "cannot read public key" in capsys.readouterr().err


class FlakyCheckpoints:
    """A store whose first timer checkpoint fails: the next tick must try again."""

    transactions = 0

    def __init__(self):
        self.calls = 0
        self.signed = asyncio.Event()

    async def append(self, events):
        self.transactions += 1
        return []

    async def checkpoint(self):
        from gateway.accountability.audit.store import StoreError

        self.calls += 1
        if self.calls == 1:
            raise StoreError("down for a moment")
        self.signed.set()
        return []

    async def close(self):
        pass


async def test_a_failed_timer_checkpoint_is_retried(caplog):
    from gateway.accountability.audit import GroupCommitLog

    store = FlakyCheckpoints()
    log = GroupCommitLog(store, flush_interval_ms=0, max_batch=10, timeout_seconds=1,
                         checkpoint_interval_seconds=0.01)
    try:
        await log.record([event(1)])
        async with asyncio.timeout(5):
            await store.signed.wait()
    finally:
        await log.close()
    assert "audit checkpoint not written: down for a moment" in caplog.text
    assert store.calls == 2  # nothing new after the retry: close signs nothing more


def test_the_sealer_signs_no_checkpoint_over_a_covered_head():
    from gateway.accountability.audit.chain import Head, Sealer

    sealer = Sealer(CheckpointKey(ed25519.Ed25519PrivateKey.generate()), 5)
    assert sealer.checkpoint(Head(7, b"\x01" * 32, 7)) is None
    checkpoint = sealer.checkpoint(Head(7, b"\x01" * 32, 5))
    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.prev_seq) == (7, 5)


@pytest.mark.parametrize(("pem", "fragment"), [
    (b"not a key", "not a PEM public key"),
    (ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
     "must be Ed25519 or P-256"),
])
def test_an_unusable_public_key_is_refused(pem, fragment):
    with pytest.raises(ConfigError, match=fragment):
        CheckpointVerifier.from_pem(pem)


def test_a_p256_public_key_verifies():
    key = CheckpointKey(ec.generate_private_key(ec.SECP256R1()))
    verifier = CheckpointVerifier.from_pem(key.public_pem().encode())
    assert verifier.algorithm == "ES256"
    assert verifier.verify(key.sign(5, 0, 5, b"\x02" * 32))
