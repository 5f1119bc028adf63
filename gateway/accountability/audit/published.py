"""Checkpoints published outside the audit store: an append-only JSON-lines file.

A checkpoint kept only in the store proves nothing about the newest events: an
attacker who can delete rows deletes the last events and their checkpoints
together, and the shorter log still verifies. So every checkpoint the gateway
signs is also appended here, one line each:

    {"seq": 1200, "head": "<chain hash hex>", "events": 1200, "at": "<UTC time>",
     "prev_seq": 1000, "every": 1000, "key_id": "...", "algorithm": "Ed25519",
     "signature": "<hex>"}

The signature is the checkpoint's (see `Checkpoint.message`: seq, prev_seq,
every, head, key id, algorithm); `events` repeats `seq` (seqs are dense from 1)
and `at` is the writer's clock, not signed. The file is opened with O_APPEND,
created mode 0600, and fsynced after every write. It is only as trustworthy as
the place it ends up: ship it to a witness (a WORM bucket, a log host the
gateway's operators cannot rewrite, or a third party), and verify against that
copy.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.accountability.audit.checkpoints import Checkpoint

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["CheckpointFile", "MalformedLineError", "Published", "read_published"]


@dataclass(frozen=True, slots=True)
class Published:
    """One line of the checkpoint file: where it was (1-based) and what it claims."""

    line: int
    checkpoint: Checkpoint
    events: int


class MalformedLineError(ValueError):
    """A line of the checkpoint file is not a checkpoint (a forgery, or a torn write)."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line} of the checkpoint file is not a checkpoint")
        self.line = line


def _line(checkpoint: Checkpoint, at: datetime.datetime) -> bytes:
    data = {"seq": checkpoint.seq, "head": checkpoint.chain_hash.hex(),
            "events": checkpoint.seq, "at": at.isoformat(timespec="milliseconds"),
            "prev_seq": checkpoint.prev_seq, "every": checkpoint.every,
            "key_id": checkpoint.key_id, "algorithm": checkpoint.algorithm,
            "signature": checkpoint.signature.hex()}
    return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()


class CheckpointFile:
    """Appends checkpoints to the file at `path` (blocking: call it off the event loop)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def publish(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Append one line per checkpoint and fsync; raises `OSError` if it cannot."""
        if not checkpoints:
            return
        now = datetime.datetime.now(datetime.UTC)
        data = b"".join(_line(checkpoint, now) for checkpoint in checkpoints)
        # One write(2) of whole lines on an O_APPEND descriptor: concurrent
        # writers (several gateway processes) never interleave within a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(number: int, text: str) -> Published:
    try:
        data = json.loads(text)
        checkpoint = Checkpoint(int(data["seq"]), int(data["prev_seq"]), int(data["every"]),
                                bytes.fromhex(data["head"]), str(data["key_id"]),
                                str(data["algorithm"]), bytes.fromhex(data["signature"]))
        return Published(number, checkpoint, int(data["events"]))
    except (ValueError, KeyError, TypeError):
        raise MalformedLineError(number) from None


def read_published(path: Path) -> list[Published]:
    """Every line of a checkpoint file, in file order (blank lines skipped).

    Raises `OSError` if the file cannot be read and `MalformedLineError` for a
    line that is not a checkpoint: a witness copy should hold only whole lines.
    """
    with path.open(encoding="utf-8") as lines:
        return [_parse(number, text) for number, text in enumerate(lines, start=1)
                if text.strip()]
