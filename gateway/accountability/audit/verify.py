"""Checking the whole log, and exporting it as JSON lines.

`verify_log` walks the rows in seq order, recomputing every hash from the
stored content (it trusts no stored hash) and stops at the first bad event:

- modified: the content no longer gives its leaf hash, or the stored chain hash
  or index columns were altered, or the chain was recomputed after an edit and
  no longer matches a signed checkpoint;
- deleted: a seq is missing, or an event's predecessor is nowhere in the log
  (later events renumbered), or events after a signed checkpoint are gone;
- inserted: an event that does not link to its predecessor while the next one
  does, or events that the following event's link skips over;
- reordered: an event links to an event stored after it, or holds the content
  whose hash another row carries;
- bad checkpoint signature / checkpoint missing;
- against the checkpoints published outside the store (`published`): a forged
  line (not signed by the key), a log cut short (the store ends before the
  newest published checkpoint), or a chain that no longer matches a published
  head hash.

Only the public key is needed: a `CheckpointVerifier` checks every signature.

Memory stays small: rows are read a page at a time; only when something is
wrong does a second pass look up where a hash really belongs.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from gateway.accountability.audit.chain import GENESIS, chain_hash, leaf_hash
from gateway.accountability.audit.events import decode, format_at

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from gateway.accountability.audit.chain import StoredEvent
    from gateway.accountability.audit.checkpoints import Checkpoint, CheckpointVerifier
    from gateway.accountability.audit.published import Published
    from gateway.accountability.audit.store import AuditStore

__all__ = ["Problem", "Verdict", "export_log", "verify_log"]

PAGE = 2_000


@dataclass(frozen=True, slots=True)
class Problem:
    """The first bad event: its seq, what is wrong (`kind`), and why we think so."""

    seq: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.kind} ({self.detail})"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of `verify_log`: counts, and the first problem if there is one."""

    events: int
    checkpoints: int
    problem: Problem | None = None
    published: int = 0
    """Published checkpoints (lines of the checkpoint file) found to match the log."""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        """One line for the terminal."""
        if self.problem is None:
            line = f"ok: {self.events} events, {self.checkpoints} checkpoints"
            return line + (f", {self.published} published checkpoints match"
                           if self.published else "")
        return f"bad: {self.problem}"


async def _rows(store: AuditStore, upto: int | None = None,
                ) -> AsyncGenerator[StoredEvent, None]:
    after = 0
    while page := await store.read_events(after, PAGE):
        for row in page:
            if upto is not None and row.seq > upto:
                return
            yield row
        after = page[-1].seq


async def _find(store: AuditStore, *, leaf: bytes = b"", chain: bytes = b"") -> int | None:
    """The seq of the row that stores this leaf (or chain) hash, if any."""
    async with aclosing(_rows(store)) as rows:
        async for row in rows:
            if row.leaf_hash == leaf or row.chain_hash == chain:
                return row.seq
    return None


class _Walk:
    """The state of one pass: the last trusted chain hash, the next seq, the last checkpoint."""

    def __init__(self, store: AuditStore, key: CheckpointVerifier,
                 checkpoints: list[Checkpoint], default_every: int, wanted: set[int]) -> None:
        self.store = store
        self.key = key
        self.checkpoints = {c.seq: c for c in checkpoints}
        self.wanted = wanted
        self.heads: dict[int, bytes] = {}
        """The recomputed chain hash at each `wanted` seq (those of published checkpoints)."""
        self.trusted = GENESIS
        self.expected = 1
        self.last_checkpoint = 0
        self.every = default_every

    async def row(self, row: StoredEvent, following: StoredEvent | None) -> Problem | None:
        problem = await self._event(row, following)
        if problem is None and row.seq in self.checkpoints:
            problem = self._checkpoint(self.checkpoints[row.seq])
        return problem

    async def _event(self, row: StoredEvent, following: StoredEvent | None) -> Problem | None:
        if row.seq != self.expected:
            gone = f"{self.expected}" if row.seq == self.expected + 1 else \
                f"{self.expected} to {row.seq - 1}"
            return Problem(self.expected, "deleted", f"no event {gone} in the log")
        try:
            event = decode(row.body)
        except ValueError:
            return Problem(row.seq, "modified", "its content is not an audit event")
        leaf = leaf_hash(row.body)
        if leaf != row.leaf_hash:
            other = await _find(self.store, leaf=leaf)
            if other is not None:
                return Problem(row.seq, "reordered", f"it holds the content of event {other}")
            return Problem(row.seq, "modified", "its content does not match its hash")
        if (row.at, row.child) != (format_at(event.at), event.child):
            return Problem(row.seq, "modified", "its index columns differ from its content")
        if row.prev_hash != self.trusted:
            return await self._broken_link(row, following)
        chained = chain_hash(self.trusted, leaf)
        if chained != row.chain_hash:
            return Problem(row.seq, "modified", "its chain hash was altered")
        self.trusted = chained
        self.expected += 1
        if row.seq in self.wanted:
            self.heads[row.seq] = chained
        return None

    async def _broken_link(self, row: StoredEvent, following: StoredEvent | None) -> Problem:
        origin = await _find(self.store, chain=row.prev_hash)
        if origin is not None and origin > row.seq:
            return Problem(row.seq, "reordered", f"it was written after event {origin}")
        if origin is not None and origin < row.seq - 1:
            return Problem(origin + 1, "inserted",
                           f"event {row.seq} links to event {origin}, skipping it")
        if origin is None and (following is None or following.prev_hash == self.trusted):
            return Problem(row.seq, "inserted", "it does not link to the event before it")
        if origin is None:
            return Problem(row.seq, "deleted",
                           "the event before it is missing and later events were renumbered")
        return Problem(row.seq, "modified", "its link to the previous event was altered")

    def _checkpoint(self, checkpoint: Checkpoint) -> Problem | None:
        seq = checkpoint.seq
        if not self.key.verify(checkpoint):
            return Problem(seq, "bad checkpoint signature",
                           f"the checkpoint is not signed by key {self.key.key_id}")
        if checkpoint.prev_seq != self.last_checkpoint:
            return Problem(seq, "checkpoint missing",
                           f"the checkpoint after event {checkpoint.prev_seq} is gone")
        if checkpoint.chain_hash != self.trusted:
            return Problem(seq, "modified", f"an event after {self.last_checkpoint} was rewritten:"
                           " the chain no longer matches the signed checkpoint")
        self.last_checkpoint, self.every = seq, checkpoint.every
        return None

    async def end(self, last_seq: int) -> Problem | None:
        """Checks on the log's tail, once every row is through."""
        beyond = max((seq for seq in self.checkpoints if seq > last_seq), default=0)
        # A live log may have grown since the walk began; only a checkpoint for
        # events that are still not there shows a deletion.
        if beyond and await self.store.last_seq() < beyond:
            return Problem(last_seq + 1, "deleted",
                           f"a checkpoint vouches for events up to {beyond}")
        due = (self.last_checkpoint // self.every + 1) * self.every
        if last_seq >= due:
            return Problem(due, "checkpoint missing", f"no signed checkpoint at event {due}")
        return None


def _forged(key: CheckpointVerifier, published: Sequence[Published]) -> Problem | None:
    for entry in sorted(published, key=lambda p: (p.checkpoint.seq, p.line)):
        if entry.events != entry.checkpoint.seq or not key.verify(entry.checkpoint):
            return Problem(entry.checkpoint.seq, "forged checkpoint",
                           f"line {entry.line} of the checkpoint file is not signed by key "
                           f"{key.key_id}")
    return None


async def _against_published(walk: _Walk, published: Sequence[Published],
                             last_seq: int) -> Problem | None:
    """The log against the checkpoints published outside it (all already signature-checked)."""
    newest = max(published, key=lambda p: p.checkpoint.seq)
    beyond = newest.checkpoint.seq
    # The file was read before the walk began, so every event it vouches for was
    # committed by then; re-reading the head only guards a walk that began earlier.
    if beyond > last_seq and await walk.store.last_seq() < beyond:
        return Problem(last_seq + 1, "cut short",
                       f"the log ends at event {last_seq} but the published checkpoint on "
                       f"line {newest.line} vouches for {beyond} events: events "
                       f"{last_seq + 1} to {beyond} were deleted")
    for entry in sorted(published, key=lambda p: (p.checkpoint.seq, p.line)):
        seq = entry.checkpoint.seq
        if seq <= last_seq and walk.heads.get(seq) != entry.checkpoint.chain_hash:
            return Problem(seq, "modified", f"the chain at event {seq} does not match the "
                           f"published checkpoint on line {entry.line}")
    return None


async def verify_log(store: AuditStore, key: CheckpointVerifier, checkpoint_every: int,
                     published: Sequence[Published] = ()) -> Verdict:
    """Check every event and checkpoint; the verdict names the first bad event.

    `key` needs only the public half. `checkpoint_every` is the writer's
    configured interval, used only while the log has no checkpoint yet.
    `published` are the checkpoints read from the file published outside the
    store (read them *before* calling): each must be signed by `key`, the log
    must reach the newest, and its chain must match each head hash. Safe on a
    live log: it checks the events committed when it starts (a batch's
    checkpoints commit with its events, so reading them afterwards sees every
    one that covers those events). Raises `StoreError` if the store cannot be read.
    """
    if published and (problem := _forged(key, published)):
        return Verdict(0, 0, problem)
    upto = await store.last_seq()
    checkpoints = await store.read_checkpoints()
    walk = _Walk(store, key, checkpoints, checkpoint_every,
                 {entry.checkpoint.seq for entry in published})
    previous: StoredEvent | None = None
    count = 0
    async with aclosing(_rows(store, upto)) as rows:
        async for row in rows:
            if previous is not None and (problem := await walk.row(previous, row)):
                return Verdict(count, len(checkpoints), problem)
            previous, count = row, count + 1
    if previous is not None and (problem := await walk.row(previous, None)):
        return Verdict(count, len(checkpoints), problem)
    last_seq = previous.seq if previous is not None else 0
    problem = await walk.end(last_seq)
    if problem is None and published:
        problem = await _against_published(walk, published, last_seq)
    return Verdict(count, len(checkpoints), problem, 0 if problem else len(published))


def _json_or_text(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


async def export_log(store: AuditStore, out: TextIO, *, fhir: bool = False) -> int:
    """Write the log as JSON lines to `out`; returns the number of events.

    Default: one `{"type": "event", ...}` line per row (content as stored, with its
    hashes) and a `{"type": "checkpoint", ...}` line after the event it signs.
    `fhir=True`: one FHIR AuditEvent resource per line, nothing else.
    """
    checkpoints = {c.seq: c for c in await store.read_checkpoints()}
    count = 0
    async with aclosing(_rows(store)) as rows:
        async for row in rows:
            count += 1
            if fhir:
                out.write(_line(decode(row.body).to_fhir()))
                continue
            out.write(_line({"type": "event", "seq": row.seq, "event": _json_or_text(row.body),
                             "prev_hash": row.prev_hash.hex(), "leaf_hash": row.leaf_hash.hex(),
                             "chain_hash": row.chain_hash.hex()}))
            if (c := checkpoints.get(row.seq)) is not None:
                out.write(_line({"type": "checkpoint", "seq": c.seq, "prev_seq": c.prev_seq,
                                 "every": c.every, "chain_hash": c.chain_hash.hex(),
                                 "key_id": c.key_id, "algorithm": c.algorithm,
                                 "signature": c.signature.hex()}))
    return count


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
