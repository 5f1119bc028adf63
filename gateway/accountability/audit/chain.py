"""The hash chain over audit events (RFC 6962-style domain separation), and sealing a batch.

    leaf(e)     = SHA-256(0x00 || canonical bytes of e)
    chain(0)    = 32 zero bytes
    chain(n)    = SHA-256(0x01 || chain(n-1) || leaf(e_n))

Each stored event keeps its canonical bytes, the previous chain hash, its leaf
hash and its chain hash. `Sealer.seal` is pure: a store reads the head inside
its write transaction, seals, and inserts the result in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.accountability.audit.events import encode, format_at

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.accountability.audit.checkpoints import Checkpoint, CheckpointKey
    from gateway.accountability.audit.events import AuditEvent

__all__ = ["GENESIS", "Head", "Sealed", "Sealer", "StoredEvent", "chain_hash", "encoded",
           "leaf_hash"]

GENESIS = bytes(32)


def leaf_hash(canonical: bytes) -> bytes:
    """SHA-256(0x00 || canonical event bytes)."""
    return hashlib.sha256(b"\x00" + canonical).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """SHA-256(0x01 || previous chain hash || leaf hash)."""
    return hashlib.sha256(b"\x01" + previous + leaf).digest()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the log. `at` (as `format_at` writes it) and `child` repeat the body's
    values for indexing; the verifier checks that they still agree."""

    seq: int
    at: str
    child: str | None
    body: bytes
    prev_hash: bytes
    leaf_hash: bytes
    chain_hash: bytes


@dataclass(frozen=True, slots=True)
class Head:
    """The end of the log as a writer finds it inside its transaction."""

    seq: int = 0
    chain_hash: bytes = GENESIS
    checkpoint_seq: int = 0


@dataclass(frozen=True, slots=True)
class Sealed:
    """What one transaction inserts: the batch's rows and any checkpoints they complete."""

    events: list[StoredEvent] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)


class Sealer:
    """Extends the chain from a head and signs a checkpoint at every `every`-th event
    (and, on request, at the head: see `checkpoint`)."""

    def __init__(self, key: CheckpointKey, every: int) -> None:
        self._key = key
        self._every = every

    def seal(self, head: Head, events: Sequence[tuple[AuditEvent, bytes]]) -> Sealed:
        """Rows for `events` (each with its canonical bytes) appended after `head`."""
        sealed = Sealed()
        previous, checkpoint_seq = head.chain_hash, head.checkpoint_seq
        for offset, (event, body) in enumerate(events, start=1):
            seq = head.seq + offset
            leaf = leaf_hash(body)
            chained = chain_hash(previous, leaf)
            sealed.events.append(StoredEvent(seq, format_at(event.at), event.child, body,
                                             previous, leaf, chained))
            if seq % self._every == 0:
                sealed.checkpoints.append(self._key.sign(seq, checkpoint_seq, self._every,
                                                         chained))
                checkpoint_seq = seq
            previous = chained
        return sealed

    def checkpoint(self, head: Head) -> Checkpoint | None:
        """A checkpoint at the head, if events after the last checkpoint are uncovered.

        The timer's checkpoint: it lets the newest events be vouched for (and
        published) within seconds instead of only at the next `every`-th event.
        """
        if head.seq <= head.checkpoint_seq:
            return None
        return self._key.sign(head.seq, head.checkpoint_seq, self._every, head.chain_hash)


def encoded(events: Sequence[AuditEvent]) -> list[tuple[AuditEvent, bytes]]:
    """Each event with its canonical bytes (computed before a store takes its lock)."""
    return [(event, encode(event)) for event in events]
