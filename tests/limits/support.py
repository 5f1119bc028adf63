"""Helpers for the limits tests: a settable clock, an alert sink that records."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from gateway.alerts import Alert

# scripts/test passes $REDIS_URL on; the default keeps test keys out of database 0.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
SECRET = "limits-test-secret-0123456789abcdef0123"

# 10:15 UTC on a weekday: well inside an hour and a day.
START = dt.datetime(2030, 3, 5, 10, 15, tzinfo=dt.UTC).timestamp()


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def next_hour(self) -> None:
        self.now = (self.now // 3600 + 1) * 3600 + 60

    def next_day(self) -> None:
        self.now = (self.now // 86400 + 1) * 86400 + 60


class RecordingSink:
    """Keeps every alert it is given."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.closed = False

    async def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def close(self) -> None:
        self.closed = True

    def kinds(self) -> list[tuple[str, object]]:
        return [(a.kind, a.detail.get("budget")) for a in self.alerts]


def free_port() -> int:
    """A loopback port nothing listens on (for now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisForwarder:
    """A TCP forwarder to the test Redis, started late: Redis "comes back" at its port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The test Redis's URL (database, credentials) with this forwarder's address."""
        test_redis = urlsplit(REDIS_URL)
        credentials = test_redis.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(test_redis._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        redis = urlsplit(REDIS_URL)
        up_reader, up_writer = await asyncio.open_connection(redis.hostname or "127.0.0.1",
                                                             redis.port or 6379)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65_536):
            target.write(data)
            await target.drain()
    except ConnectionError:
        pass
    finally:
        target.close()
