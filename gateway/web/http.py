"""The `/graphql` endpoint: GraphQL-over-HTTP, authenticated before anything is executed."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError
from starlette.datastructures import URL
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionResult

from gateway.accountability.refusals import Refusal
from gateway.auth.dpop import DpopProofRejectedError, DpopRequest, deferred_replay_checks
from gateway.auth.errors import JwksUnavailableError
from gateway.core.errors import (
    AuditUnavailableError,
    BadUserInputError,
    GatewayError,
    RateLimitedError,
    UnauthenticatedError,
)
from gateway.logs import exception_summary
from gateway.lookup.pipeline import Lookup
from gateway.telemetry.requests import request_started
from gateway.web.documents import document_request
from gateway.web.pages import graphiql_page
from gateway.web.responses import GRAPHQL_RESPONSE, JSON, error_response, result_response
from resolvers.context import RequestContext

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send

    from gateway.core.caller import Caller
    from gateway.lookup.admission import Admission
    from gateway.web.documents import Documents
    from gateway.web.runtime import Runtime

__all__ = ["GraphQLEndpoint", "graphql_endpoint"]

log = logging.getLogger("gateway.access")

_ACCEPT_JSON = {JSON, "application/*", "*/*"}
_NOT_BAD_INPUT = frozenset({"FORBIDDEN", "SHIELDED", "ACCESS_BUDGET_EXCEEDED", "RATE_LIMITED",
                            "UPSTREAM_UNAVAILABLE", "BUDGETS_UNAVAILABLE"})


class _BodyError(GatewayError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.extensions["code"] = code


def _negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when neither is acceptable."""
    if not accept:
        return JSON
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if GRAPHQL_RESPONSE in ranges:
        return GRAPHQL_RESPONSE
    return JSON if ranges & _ACCEPT_JSON else None


class _Head:
    """The request headers `/graphql` reads, taken from the ASGI scope in one pass.

    As Starlette's `Headers.get` would: a name's first value (decoded as latin-1),
    all of them for `DPoP`.
    """

    __slots__ = ("accept", "authorization", "content_length", "content_type", "dpop", "trace")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.dpop: list[str] = []
        first: dict[bytes, str] = {}
        for name, value in raw:
            if name == b"dpop":
                self.dpop.append(value.decode("latin-1"))
            elif name in _READ and name not in first:
                first[name] = value.decode("latin-1")
        self.accept = first.get(b"accept")
        self.authorization = first.get(b"authorization")
        self.content_length = first.get(b"content-length")
        self.content_type = first.get(b"content-type")
        self.trace = ({name.decode("latin-1"): first[name] for name in _TRACE_HEADERS
                       if name in first} if not first.keys().isdisjoint(_TRACE_HEADERS)
                      else _NO_TRACE)


_TRACE_HEADERS = (b"traceparent", b"tracestate")
_READ = frozenset({b"accept", b"authorization", b"content-length", b"content-type",
                   *_TRACE_HEADERS})
_NO_TRACE: dict[str, str] = {}
"""No W3C trace headers: shared, never written (`_Head` makes its own dict when there are)."""


async def _read_body(head: _Head, receive: Receive, limit: int) -> bytes:
    content_type = (head.content_type or "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise _BodyError(415, "BAD_USER_INPUT", "Send the request as application/json.")
    length = head.content_length
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise _BodyError(413, "BAD_USER_INPUT", f"The request body exceeds {limit} bytes.")
    chunks, size = [], 0
    while True:  # as Starlette's `Request.stream()`, without the `Request`
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _BodyError(413, "BAD_USER_INPUT",
                                     f"The request body exceeds {limit} bytes.")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            # Gone mid-body, or cut off by the body-read deadline.
            raise _BodyError(408, "BAD_USER_INPUT", "The request body did not arrive in time.")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _nests_deeper(value: object, limit: int) -> bool:
    """Whether JSON `value` nests arrays and objects more than `limit` levels.

    Level by level rather than recursively, so a hostile depth cannot exhaust
    the stack here either.
    """
    level = [value]
    for _ in range(limit + 1):
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            return False
        level = [item for c in containers for item in (c.values() if isinstance(c, dict) else c)]
    return True


_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x2E for byte in range(256))
"""Each digit to "0", every other byte to ".": `_LONG_NUMBER` then needs only a substring test."""
_LONG_NUMBER = b"0" * 20
"""Twenty digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float."""


def _parse_json(body: bytes) -> object:
    """The body's JSON, read by orjson; what orjson refuses or may read differently
    (see `_LONG_NUMBER`) is read by `json` as before, which also names the error."""
    if _LONG_NUMBER not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # `json` says why (or accepts what it always did: NaN, UTF-16, a BOM)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInputError("The request body is not JSON.") from None
    except RecursionError:
        # The decoder gives up cleanly at Python's recursion limit; far past our own.
        raise BadUserInputError("The request body nests too deeply.") from None


def _payload(body: bytes, max_depth: int,
             documents: Documents) -> tuple[str, dict[str, Any] | None, str | None]:
    """The GraphQL-over-HTTP request's parts, each checked before anything uses them.

    The document is named by `query`, `documentId` or a persisted-query hash;
    `documents` says which of them may run, and returns its text.
    """
    payload = _parse_json(body)
    if not isinstance(payload, dict):
        raise BadUserInputError("Send one JSON object; batches are not accepted.")
    variables, operation, extensions = (
        payload.get("variables"), payload.get("operationName"), payload.get("extensions"))
    if operation is not None and not isinstance(operation, str):
        raise BadUserInputError("`operationName` must be a string.")
    for name, value in (("variables", variables), ("extensions", extensions)):
        if value is not None and not isinstance(value, dict):
            raise BadUserInputError(f"`{name}` must be a JSON object.")
        if _nests_deeper(value, max_depth):
            raise BadUserInputError(f"`{name}` nests deeper than {max_depth} levels.")
    return documents.resolve(document_request(payload)), variables, operation


async def _execute(runtime: Runtime, query: str, variables: dict[str, Any] | None,
                   operation: str | None, context: RequestContext) -> ExecutionResult:
    """Execute, with strawberry's "no operation to run" turned into a coded request error.

    strawberry raises (rather than returns) when `operationName` names nothing in
    the document, or the document holds only fragments; the message is ours so
    that it need not quote the name back.
    """
    try:
        return await runtime.schema.execute(query, variable_values=variables,
                                            context_value=context, operation_name=operation)
    except CannotGetOperationTypeError:
        message = ("The document holds no operation to run." if operation is None
                   else "`operationName` names no operation in the document.")
    error = GraphQLError(message, extensions={"code": BadUserInputError.code})
    return ExecutionResult(data=None, errors=[error])


def _refusal(exc: GatewayError, request_id: str, media_type: str,
             headers: dict[str, str] | None = None) -> Response:
    """A refusal before or instead of a GraphQL result, with the error's own HTTP status."""
    return error_response(exc.http_status, exc.code, exc.message, request_id, media_type, headers)


def _refused(caller: Caller, outcome: str, reason: str, request_id: str) -> Refusal:
    """An authenticated request refused whole: the log says who, as for any access."""
    return Refusal("request", outcome, reason, request_id, caller.subject, caller.organisation,
                   caller.client_id)


def _first_code(result: ExecutionResult) -> str:
    """The code of a refused document's first error (validation errors carry none)."""
    extensions = (result.errors or [GraphQLError("")])[0].extensions or {}
    code = extensions.get("code")
    return code if isinstance(code, str) else "GRAPHQL_VALIDATION_FAILED"


def _context(runtime: Runtime, caller: Caller, request_id: str,
             admission: Admission) -> RequestContext:
    lookup = Lookup(runtime.services, caller, request_id, admission)
    return RequestContext(caller=caller, lookup=lookup, request_id=request_id)


def _unauthenticated(runtime: Runtime, exc: UnauthenticatedError, request_id: str,
                     media_type: str, peer: str | None) -> Response:
    reason = getattr(exc, "reason", "refused")  # names the rule, never the token
    if runtime.settings.development:  # the client hears only "unauthenticated"; say why
        log.warning("401 for request %s: token refused: %s", request_id, reason)
    runtime.refusals.note(Refusal("authentication", "refused", reason, request_id), peer)
    return _refusal(exc, request_id, media_type,
                    {"WWW-Authenticate": runtime.validator.challenge(exc)})


async def _not_admitted(runtime: Runtime, context: RequestContext, media_type: str,
                        peer: str | None) -> Response | None:
    """The refusal if the request's admission (replay check, rate limit) failed, else None.

    Makes the admission now if nothing during execution carried it, so no answer
    leaves before it; refused, the request is answered as if it never ran.
    """
    caller, request_id = context.caller, context.request_id
    try:
        await context.lookup.admitted()
    except DpopProofRejectedError as exc:
        return _unauthenticated(runtime, exc, request_id, media_type, peer)
    except RateLimitedError as exc:
        runtime.refusals.note(_refused(caller, "rate_limited", "requests per minute",
                                       request_id), peer)
        return _refusal(exc, request_id, media_type, {"Retry-After": str(exc.retry_after)})
    return None


async def _handle(scope: Scope, receive: Receive, head: _Head, runtime: Runtime,
                  request_id: str, seen: list[str]) -> Response:
    """The response to one request; `seen` gets the caller's log pseudonym once known."""
    development, limits = runtime.settings.development, runtime.settings.limits
    method = scope["method"]
    if method == "GET":
        if development and "text/html" in (head.accept or ""):
            return graphiql_page()  # offline: its assets are served by this gateway
        return error_response(405, "BAD_USER_INPUT", "Use POST.", request_id,
                              headers={"Allow": "POST"})
    media_type = _negotiate(head.accept)
    if media_type is None:
        return error_response(406, "BAD_USER_INPUT",
                              f"Accept {GRAPHQL_RESPONSE} or {JSON}.", request_id)
    client = scope.get("client")
    refusals, peer = runtime.refusals, client[0] if client else None
    try:
        body = await _read_body(head, receive, limits.max_body_bytes)
    except _BodyError as exc:
        refusals.note(Refusal("request", "bad_request", f"http {exc.status}", request_id), peer)
        return error_response(exc.status, exc.extensions["code"], exc.message, request_id,
                              media_type)
    # The proof's `htu` is the URL as Starlette's `Request.url` gives it; built only when
    # there is a proof to check it against.
    dpop = DpopRequest(tuple(head.dpop), method, str(URL(scope=scope)) if head.dpop else "")
    try:
        with deferred_replay_checks() as replay:  # made with the rate limit, in one round trip
            caller = await runtime.validator.authenticate(head.authorization, dpop)
    except UnauthenticatedError as exc:
        return _unauthenticated(runtime, exc, request_id, media_type, peer)
    except JwksUnavailableError as exc:
        refusals.note(Refusal("authentication", "refused", "keys unavailable", request_id), peer)
        return _refusal(exc, request_id, media_type, {"Retry-After": "5"})
    seen.append(runtime.pseudonym.remembered(caller.subject))
    try:
        query, variables, operation = _payload(body, limits.max_json_depth, runtime.documents)
    except BadUserInputError as exc:
        if replay and not await replay[0].now():  # a replayed proof is refused first, as ever
            return _unauthenticated(runtime, DpopProofRejectedError("proof replayed"),
                                    request_id, media_type, peer)
        refusals.note(_refused(caller, "bad_request", exc.code, request_id), peer)
        return _refusal(exc, request_id, media_type)
    # The rate limit (and replay check) ride on the request's first Redis call.
    context = _context(runtime, caller, request_id, runtime.services.gate.admission(caller, replay))
    result = await _execute(runtime, query, variables, operation, context)
    if (refused := await _not_admitted(runtime, context, media_type, peer)) is not None:
        return refused
    if result.data is None and result.errors and not context.accesses:
        # Refused whole before any child was looked up: validation, limits, no operation.
        code = _first_code(result)
        refusals.note(_refused(caller, "refused" if code in _NOT_BAD_INPUT else "bad_request",
                               code, request_id), peer)
    try:
        # Durable before release: no byte of the result leaves until this returns.
        await runtime.accountability.record(caller, request_id, context.accesses)
    except AuditUnavailableError as exc:
        return _refusal(exc, request_id, media_type, {"Retry-After": "5"})
    return result_response(result, media_type, request_id, development=development,
                           max_errors=limits.max_errors)


class GraphQLEndpoint:
    """`/graphql` as a plain ASGI app: Starlette's router calls it directly.

    No `Request` object and no `request_response` wrapper: the headers it needs
    are read once from the scope and the body straight from `receive`. Handles
    one GraphQL request; never lets an exception reach the client.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        request_id = os.urandom(16).hex()  # 128 random bits, as uuid4 (which costs 2 µs more)
        started = time.perf_counter()
        status = 500
        head = _Head(scope["headers"])
        seen: list[str] = []
        observed = request_started(head.trace, request_id)  # span, metrics, log request id
        try:
            response = await _handle(scope, receive, head, runtime, request_id, seen)
            status = observed.responded(response)
        except Exception as exc:  # noqa: BLE001 -- the last line of defence; logged without message
            log.error(  # noqa: TRY400 -- a traceback would print the message, which may hold data
                "request %s failed: %s", request_id, exception_summary(exc))
            response = error_response(500, "INTERNAL_SERVER_ERROR", "Internal error.", request_id)
        finally:
            log.info("request %s status=%d ms=%.1f caller=%s", request_id, status,
                     (time.perf_counter() - started) * 1000, seen[0] if seen else "-")
            observed.finished()
        await response(scope, receive, send)


graphql_endpoint = GraphQLEndpoint()
"""The `/graphql` endpoint (an ASGI app, see `GraphQLEndpoint`)."""
