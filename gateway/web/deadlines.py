"""Read deadlines for HTTP/1.1 clients: a request's head, then its body, in time or closed.

uvicorn bounds only the idle time between kept-alive requests. A client that sends a
header line every few seconds, or a body a byte at a time, holds its connection (and a
file descriptor) for as long as it likes. `deadline_protocol` builds uvicorn's httptools
protocol with two clocks:

- the **head** deadline runs from connecting, or from the first byte after a kept-alive
  response, until the request line and headers are in;
- the **body** deadline runs from then until the whole body is in.

When one passes, the client is sent `408 Request Timeout` (if it has begun a request and
nothing has yet been sent on it) and the connection is closed. A request without a body
costs one `call_later` and one `cancel`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio

    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
    from uvicorn.server import ServerState

__all__ = ["deadline_protocol"]

_TIMEOUT_TEXT = b"The request did not arrive in time.\n"
_TIMEOUT_HEADERS = (b"content-type: text/plain; charset=utf-8\r\n"
                    b"content-length: %d\r\nconnection: close\r\n" % len(_TIMEOUT_TEXT))


class _Phase(enum.Enum):
    CONNECTED = enum.auto()  # nothing received yet; the head clock runs from connecting
    HEAD = enum.auto()       # a request has begun; its line and headers are not all in
    BODY = enum.auto()       # headers in; the body is not
    IDLE = enum.auto()       # the last request is all in; no clock until the next byte
    CLOSING = enum.auto()    # a deadline passed while answering: close after that answer
    OFF = enum.auto()        # lost, or handed to the WebSocket protocol: no clocks


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline and a body deadline per request.

    The clocks follow what the parser has seen, not the responses: with pipelining a
    request's clocks run while an earlier one is answered. While uvicorn has stopped
    reading (a queued pipelined request, or a body the app has not taken yet) the client
    cannot be late, so a deadline that passes then starts again.
    """

    header_seconds: ClassVar[float] = 5.0
    body_seconds: ClassVar[float] = 10.0

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._phase = _Phase.CONNECTED
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._phase = _Phase.OFF
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.IDLE:
            # Any byte, even a stray CRLF: uvicorn has just cancelled its keep-alive timer.
            self._phase = _Phase.HEAD
            self._arm(self.header_seconds)
        super().data_received(data)
        if self._phase is _Phase.BODY and self._deadline is None:
            # Armed here rather than when the headers complete, so a request whose end
            # arrives in the same read as its headers never starts a body clock.
            self._arm(self.body_seconds)

    def on_message_begin(self) -> None:
        if self._phase is _Phase.IDLE:  # pipelined: begun in the read that ended the last
            self._arm(self.header_seconds)
            self._phase = _Phase.HEAD
        elif self._phase is _Phase.CONNECTED:
            self._phase = _Phase.HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._phase is _Phase.HEAD:
            self._disarm()
            self._phase = _Phase.BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._phase is _Phase.BODY:
            self._disarm()
            self._phase = _Phase.IDLE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._phase is _Phase.CLOSING:
            self.transport.close()  # uvicorn's own handler then does nothing more
        super().on_response_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._phase = _Phase.OFF
        super().handle_websocket_upgrade()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we are not reading, so the client is not late
            self._arm(self.body_seconds if self._phase is _Phase.BODY else self.header_seconds)
            return
        cycle: RequestResponseCycle | None = self.cycle
        if self._phase is not _Phase.BODY and cycle is not None and (
                self.pipeline or not cycle.response_complete):
            # Late with the next request while an earlier one is being answered: finish
            # that answer (saying `connection: close` if it has not started), then close.
            self._phase = _Phase.CLOSING
            cycle.keep_alive = False
            return
        if self._phase is _Phase.HEAD or (
                self._phase is _Phase.BODY and cycle is not None and not self.pipeline
                and not cycle.response_started):
            self.transport.write(self._timeout_response())
        if cycle is not None and not cycle.response_complete:
            # As uvicorn does on a lost connection: the app's receive() now returns
            # http.disconnect, and whatever it answers goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self._phase = _Phase.OFF
        self.transport.close()

    def _timeout_response(self) -> bytes:
        default = b"".join(name + b": " + value + b"\r\n"
                           for name, value in self.server_state.default_headers)
        return STATUS_LINE[408] + default + _TIMEOUT_HEADERS + b"\r\n" + _TIMEOUT_TEXT


def deadline_protocol(header_seconds: float, body_seconds: float) -> type[asyncio.Protocol]:
    """An HTTP protocol class for `uvicorn.Config(http=...)` enforcing these deadlines.

    `header_seconds` for the request line and headers (from connecting, or from the
    first byte after a kept-alive response); `body_seconds`, from then, for the body.
    """
    head, body = header_seconds, body_seconds

    class ConfiguredDeadlineProtocol(DeadlineProtocol):
        header_seconds = head
        body_seconds = body

    return ConfiguredDeadlineProtocol
