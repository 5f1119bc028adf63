"""Audit test helpers: events, a tamperer that edits either store directly, a TCP proxy."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from gateway.accountability.audit import AuditEvent, child_pseudonym
from gateway.accountability.audit.chain import chain_hash, leaf_hash
from gateway.accountability.audit.events import encode
from gateway.settings import AuditSettings

SECRET = "audit-test-pseudonym-secret-" + "s" * 16
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "gateway.web.cli"]
BASE = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
# Synthetic children (test-range NHS numbers, invented names): these must never reach the log.
CHILDREN = {"9990000018": "Amelia Quillfeather", "9990000026": "Borislav Thistlewood",
            "9990000034": "Carys Moonwhistle"}


def event(i: int, *, nhs: str | None = None, outcome: str = "released") -> AuditEvent:
    numbers = list(CHILDREN)
    nhs = nhs or numbers[i % len(numbers)]
    return AuditEvent(
        at=BASE + datetime.timedelta(seconds=i), request_id=f"req-{i}", action="child.read",
        outcome=outcome, subject=f"user-{i % 3}", organisation="org-1", client_id="client-a",
        purpose="SAFEGUARDING", case_reference=f"CASE-{i}", child=child_pseudonym(SECRET, nhs),
        released=("Child.name", "Child.dateOfBirth"), withheld=(("Child.address", "SHIELDED"),),
        sources=("gp", "school"))


def settings(**values: object) -> AuditSettings:
    # No timer checkpoints unless a test asks: most tests count on one every 5 events.
    base: dict[str, object] = {"pseudonym_secret": SECRET, "flush_interval_ms": 2,
                               "checkpoint_every": 5, "checkpoint_interval_seconds": 0,
                               "timeout_seconds": 1.0}
    return AuditSettings.model_validate({**base, **values})


@dataclass
class Tamperer:
    """Edits a store behind the gateway's back, as an attacker with database access would.

    SQLite: drops the append-only triggers first. PostgreSQL: a superuser session
    with `session_replication_role = replica`, which does not fire triggers.
    """

    sqlite_path: str | None = None
    admin_dsn: str | None = None

    @property
    def events(self) -> str:
        return "audit_event" if self.sqlite_path else "contactpoint_audit.event"

    @property
    def checkpoints(self) -> str:
        return "audit_checkpoint" if self.sqlite_path else "contactpoint_audit.checkpoint"

    async def execute(self, sql: str, *params: object) -> None:
        await self.fetch(sql, *params)

    async def fetch(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Run `sql` ({events} and {checkpoints} name the tables; $1... the parameters)."""
        sql = sql.replace("{events}", self.events).replace("{checkpoints}", self.checkpoints)
        if self.sqlite_path is not None:
            return self._sqlite(re.sub(r"\$\d+", "?", sql), params)
        assert self.admin_dsn is not None
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute("SET session_replication_role = replica")
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    def _sqlite(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(self.sqlite_path or "", isolation_level=None)
        try:
            for name in ("event_no_update", "event_no_delete", "checkpoint_no_update",
                         "checkpoint_no_delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS audit_{name}")
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    async def row(self, seq: int) -> tuple[object, ...]:
        (row,) = await self.fetch("SELECT seq, at, child, body, prev_hash, leaf_hash, chain_hash"
                                  " FROM {events} WHERE seq = $1", seq)
        return row

    async def modify(self, seq: int, **changes: object) -> None:
        """Change an event's content, leaving its hashes as they were."""
        body = json.loads(str((await self.row(seq))[3]))
        body.update(changes or {"subject": "someone-else"})
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        await self.execute("UPDATE {events} SET body = $1 WHERE seq = $2", text, seq)

    async def delete(self, seq: int) -> None:
        await self.execute("DELETE FROM {events} WHERE seq = $1", seq)

    async def cut_from(self, seq: int) -> None:
        """Cut the log short: delete event `seq` and every later one, and their checkpoints."""
        await self.execute("DELETE FROM {events} WHERE seq >= $1", seq)
        await self.execute("DELETE FROM {checkpoints} WHERE seq >= $1", seq)

    async def move(self, seq: int, to: int) -> None:
        await self.execute("UPDATE {events} SET seq = $1 WHERE seq = $2", to, seq)

    async def swap(self, a: int, b: int) -> None:
        """Exchange two rows' positions (each keeps its own content and hashes)."""
        await self.move(a, 1_000_000)
        await self.move(b, a)
        await self.move(1_000_000, b)

    async def shift_from(self, seq: int, by: int) -> None:
        """Renumber events from `seq` on by `by` (via a far offset: seq is a primary key)."""
        await self.execute("UPDATE {events} SET seq = seq + 1000000 WHERE seq >= $1", seq)
        await self.execute("UPDATE {events} SET seq = seq - 1000000 + $1"
                           " WHERE seq >= 1000000", by)

    async def insert_forged(self, seq: int, forged: AuditEvent) -> None:
        """Insert a well-formed event at `seq`, linked to its predecessor, later ones shifted."""
        previous = (await self.row(seq - 1))[6]
        assert isinstance(previous, bytes)
        await self.shift_from(seq, 1)
        await self.insert_row(seq, forged, previous)

    async def insert_row(self, seq: int, forged: AuditEvent, previous: bytes) -> bytes:
        body = encode(forged)
        leaf = leaf_hash(body)
        chained = chain_hash(previous, leaf)
        at: object = forged.at if self.admin_dsn else self._at(forged)
        await self.execute("INSERT INTO {events} VALUES ($1, $2, $3, $4, $5, $6, $7)",
                           seq, at, forged.child, body.decode(), previous, leaf, chained)
        return chained

    @staticmethod
    def _at(forged: AuditEvent) -> str:
        return forged.to_json()["at"]

    async def rechain_from(self, seq: int) -> None:
        """Recompute every leaf and chain hash from `seq` on: a careful forger's cover-up."""
        rows = await self.fetch("SELECT seq, body FROM {events} WHERE seq >= $1"
                                " ORDER BY seq", seq)
        previous = (await self.row(seq - 1))[6] if seq > 1 else bytes(32)
        assert isinstance(previous, bytes)
        for number, body in rows:
            leaf = leaf_hash(str(body).encode())
            chained = chain_hash(previous, leaf)
            await self.execute("UPDATE {events} SET prev_hash = $1, leaf_hash = $2,"
                               " chain_hash = $3 WHERE seq = $4", previous, leaf, chained, number)
            previous = chained

    async def corrupt_signature(self, seq: int) -> None:
        (signature,) = (await self.fetch("SELECT signature FROM {checkpoints}"
                                         " WHERE seq = $1", seq))[0]
        assert isinstance(signature, bytes)
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        await self.execute("UPDATE {checkpoints} SET signature = $1 WHERE seq = $2",
                           flipped, seq)

    async def storage_text(self) -> str:
        """Everything the store holds, as text (SQLite: the raw file bytes, WAL included)."""
        if self.sqlite_path is not None:
            files = [Path(self.sqlite_path + suffix) for suffix in ("", "-wal", "-shm")]
            return b"".join(f.read_bytes() for f in files if f.exists()).decode("latin-1")
        rows = await self.fetch("SELECT t::text FROM {events} t UNION ALL"
                                " SELECT c::text FROM {checkpoints} c")
        return "\n".join(str(row[0]) for row in rows)


class TcpProxy:
    """A loopback TCP forwarder that can be stopped (connections cut) and started again."""

    def __init__(self, target_port: int, *, hang: bool = False) -> None:
        self.target_port = target_port
        self.hang = hang  # accept connections, then say nothing (a server that hangs)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hang:
            self._writers.add(writer)
            await reader.read()  # until `stop` cuts the connection
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        pumps = [asyncio.create_task(self._pump(reader, up_writer)),
                 asyncio.create_task(self._pump(up_reader, writer))]
        self._pumps.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._pumps.difference_update(pumps)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
