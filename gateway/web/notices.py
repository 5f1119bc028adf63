"""Signed "changed" notices: a source system tells the gateway to forget a child's cached answers.

The protocol, as a source system (a council, school or GP system) implements it:

``POST /notices/{connector}``, where ``{connector}`` is the system's configured
name and that connector has a ``notice_secret``. Two headers::

    X-CP-Timestamp: 1700000000
    X-CP-Signature: v1=<64 lowercase hex digits>

The timestamp is the time of sending in Unix seconds (ASCII digits, no sign,
no leading zeros). The signature is HMAC-SHA256, keyed with the UTF-8 bytes of
the shared secret, over ``<timestamp>.`` followed by the raw body bytes, in
lowercase hex. While rotating secrets a system may send up to
`MAX_SIGNATURES` comma-separated ``v1=`` values (one per secret it holds);
any one matching suffices. The body, at most `MAX_BODY_BYTES` (16 KiB)::

    {"type": "changed", "nhsNumbers": ["9434765919", ...]}

with 1 to `MAX_NHS_NUMBERS` (100) NHS numbers, each exactly ten digits with a
valid Modulus 11 check digit, and no other keys. Checked in this order:

- 404 ``NOT_FOUND``: no such connector, or it has no ``notice_secret`` (one
  body for both: an unknown name and a system without a secret look alike).
- 401 ``UNAUTHENTICATED``: a header missing or malformed, or the timestamp
  more than `WINDOW_SECONDS` (300) from the gateway's clock either way.
- 413 ``BAD_USER_INPUT``: the body is over 16 KiB (it is not read past that).
- 401 ``UNAUTHENTICATED``: no signature matches. Every 401 has the same
  message; only the gateway's log records which check failed.
- 400 ``BAD_USER_INPUT``: the body is not such a notice; the message says why.
- 503 ``UPSTREAM_UNAVAILABLE``: the cache could not be reached, so the purge
  may not have happened; send the notice again (it is idempotent).
- 202 ``{"purged": n}``: every cached answer about each of the ``n`` distinct
  children, from every system, is gone; the next query is answered live. ``n``
  counts the distinct numbers sent, whether or not anything was cached (the
  answer does not reveal what the cache held).

A replay inside the window only purges again, which costs one live fetch.
`sign_notice` builds the headers for a sender.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

from gateway.core.errors import BadUserInputError, GatewayError
from gateway.core.nhs import is_valid_nhs_number
from gateway.logs import exception_summary
from gateway.web.responses import error_response

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from starlette.requests import Request
    from starlette.responses import Response

    from gateway.settings import Settings
    from gateway.web.runtime import Runtime

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_NHS_NUMBERS",
    "MAX_SIGNATURES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WINDOW_SECONDS",
    "NoticeEndpoint",
    "notice_endpoint",
    "notice_signature",
    "parse_notice",
    "parse_signatures",
    "parse_timestamp",
    "sign_notice",
    "signature_matches",
    "within_window",
]

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-CP-Timestamp"
SIGNATURE_HEADER = "X-CP-Signature"
WINDOW_SECONDS = 300
MAX_BODY_BYTES = 16 * 1024
MAX_NHS_NUMBERS = 100
MAX_SIGNATURES = 8

_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,11}")
_SIGNATURE = re.compile(r"v1=([0-9a-f]{64})")
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_NOT_FOUND = "No notices are accepted here."
_UNAUTHENTICATED = "A valid, current notice signature is required."


def notice_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `<timestamp>.<body>` under the secret's UTF-8 bytes."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_notice(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The two headers a sender attaches to `body` sent at `timestamp` (Unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"v1={notice_signature(secret, timestamp, body)}"}


def parse_timestamp(value: str | None) -> int | None:
    """The timestamp header's seconds; None unless it is 1-12 ASCII digits without a leading 0."""
    if value is None or not _TIMESTAMP.fullmatch(value):
        return None
    return int(value)


def parse_signatures(value: str | None) -> tuple[str, ...] | None:
    """The hex digests of a signature header; None if any comma-separated part is not `v1=<hex>`."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) > MAX_SIGNATURES:
        return None
    digests = []
    for part in parts:
        match = _SIGNATURE.fullmatch(part.strip())
        if match is None:
            return None
        digests.append(match[1])
    return tuple(digests)


def within_window(timestamp: int, now: float, window: float = WINDOW_SECONDS) -> bool:
    """True when `timestamp` is at most `window` seconds before or after `now`."""
    return abs(now - timestamp) <= window


def signature_matches(secret: str, timestamp: int, body: bytes, digests: Sequence[str]) -> bool:
    """True if any digest is the body's signature; each compared in constant time."""
    expected = notice_signature(secret, timestamp, body).encode("ascii")
    # Every candidate is compared, so the time taken does not say which one matched.
    results = [hmac.compare_digest(expected, digest.encode("ascii")) for digest in digests]
    return any(results)


def parse_notice(body: bytes) -> tuple[str, ...]:
    """The distinct NHS numbers of a "changed" notice, in order; `BadUserInputError` if not one."""
    try:
        notice = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadUserInputError("The body is not JSON.") from None
    if not isinstance(notice, dict) or set(notice) != {"type", "nhsNumbers"}:
        raise BadUserInputError(
            'Send one JSON object with exactly the keys "type" and "nhsNumbers".')
    if notice["type"] != "changed":
        raise BadUserInputError('"type" must be "changed".')
    numbers = notice["nhsNumbers"]
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_NHS_NUMBERS:
        raise BadUserInputError(
            f'"nhsNumbers" must be a list of 1 to {MAX_NHS_NUMBERS} NHS numbers.')
    for index, number in enumerate(numbers):
        if not isinstance(number, str) or not is_valid_nhs_number(number):
            raise BadUserInputError(
                f'"nhsNumbers"[{index}] is not an NHS number: ten digits, no spaces, '
                "with a valid Modulus 11 check digit.")
    return tuple(dict.fromkeys(numbers))


class _RefusedError(GatewayError):
    """A notice turned away: the answer for the sender and the reason for our log."""

    def __init__(self, status: int, code: str, message: str, reason: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.extensions["code"] = code
        self.reason = reason
        self.headers = headers or {}


def _unauthenticated(reason: str) -> _RefusedError:
    return _RefusedError(401, "UNAUTHENTICATED", _UNAUTHENTICATED, reason,
                         {"WWW-Authenticate": 'CP-Signature realm="contactpoint-notices"'})


def _too_large() -> _RefusedError:
    return _RefusedError(413, "BAD_USER_INPUT", f"The body exceeds {MAX_BODY_BYTES} bytes.",
                         "too-large")


def _notice_secret(settings: Settings, name: str) -> str | None:
    for connector in settings.connectors:
        if connector.name == name and connector.notice_secret is not None:
            return connector.notice_secret.get_secret_value()
    return None


async def _read_body(request: Request) -> bytes:
    """The body, refused as soon as it is known to exceed `MAX_BODY_BYTES`."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isascii() or not length.isdigit()
                               or int(length) > MAX_BODY_BYTES):
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class NoticeEndpoint:
    """The `/notices/{connector}` endpoint; `clock` (Unix seconds) is injectable for tests."""

    clock: Callable[[], float] = time.time

    async def _authentic_body(self, request: Request, secret: str) -> bytes:
        timestamp = parse_timestamp(request.headers.get(TIMESTAMP_HEADER))
        digests = parse_signatures(request.headers.get(SIGNATURE_HEADER))
        if timestamp is None or digests is None:
            raise _unauthenticated("malformed-headers")
        if not within_window(timestamp, self.clock()):
            raise _unauthenticated("outside-window")
        body = await _read_body(request)
        if not signature_matches(secret, timestamp, body, digests):
            raise _unauthenticated("bad-signature")
        return body

    async def _purge(self, request: Request, runtime: Runtime, name: str) -> int:
        secret = _notice_secret(runtime.settings, name)
        if secret is None:
            raise _RefusedError(404, "NOT_FOUND", _NOT_FOUND, "no-such-endpoint")
        try:
            numbers = parse_notice(await self._authentic_body(request, secret))
        except BadUserInputError as exc:
            raise _RefusedError(400, exc.code, exc.message, "bad-notice") from None
        await runtime.services.sources.forget(numbers)
        if runtime.store.status != "ok":
            raise _RefusedError(503, "UPSTREAM_UNAVAILABLE",
                                "The cache could not be reached; send the notice again.",
                                "cache-unavailable", {"Retry-After": "5"})
        return len(numbers)

    async def handle(self, request: Request) -> Response:
        """Verify one notice and purge its children; never lets an exception reach the sender."""
        runtime: Runtime = request.app.state.runtime
        request_id = uuid.uuid4().hex
        name = request.path_params["connector"]
        # Only configured names reach the log: the path is the sender's text.
        shown = name if any(c.name == name for c in runtime.settings.connectors) else "-"
        try:
            purged = await self._purge(request, runtime, name)
        except _RefusedError as exc:
            log.warning("notice %s connector=%s outcome=refused:%s count=0", request_id, shown,
                        exc.reason)
            return error_response(exc.status, exc.extensions["code"], exc.message, request_id,
                                  headers=exc.headers)
        except Exception as exc:  # noqa: BLE001 -- the last line of defence; logged without message
            log.error(  # noqa: TRY400 -- a traceback would print the message, which may hold data
                "notice %s connector=%s outcome=failed:%s count=0", request_id, shown,
                exception_summary(exc))
            return error_response(500, "INTERNAL_SERVER_ERROR", "Internal error.", request_id)
        log.info("notice %s connector=%s outcome=purged count=%d", request_id, shown, purged)
        return JSONResponse({"purged": purged}, 202, {**_HEADERS, "X-Request-Id": request_id})


notice_endpoint = NoticeEndpoint().handle
"""The endpoint on the system clock, as `create_app` routes it."""
