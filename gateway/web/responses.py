"""Turning execution results into GraphQL-over-HTTP responses with stable error codes."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from gateway.core.errors import AccessBudgetExceededError, BudgetsUnavailableError

if TYPE_CHECKING:
    from graphql import GraphQLError
    from starlette.types import Receive, Scope, Send
    from strawberry.types import ExecutionResult

__all__ = ["ERRORS_TRUNCATED", "GRAPHQL_RESPONSE", "JSON", "error_response", "result_response"]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ERRORS_TRUNCATED = "ERRORS_TRUNCATED"

# Messages of strawberry's / graphql-core's shape limits (pinned by tests). "Validation
# aborted" is graphql-core's own budget for overlapping-field checks (many repeated fields).
_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than \d+ "
    r"tokens|look up at most|^Validation aborted")
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_RAW_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in _HEADERS.items()]


class _EncodedResponse(Response):
    """A `Response` whose header list is assembled from pre-encoded parts.

    The same headers, in the same order, as `Response(body, status, headers,
    media_type=...)` makes of `{**_HEADERS, "X-Request-Id": ..., **extra}` for our JSON
    media types: those, then `content-length`, then `content-type`. `extra` adds headers
    (`Retry-After`, `WWW-Authenticate`, `Allow`); it never repeats one of `_HEADERS`.
    """

    def __init__(self, body: bytes, status: int, request_id: str, media_type: str,
                 extra: dict[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status
        self.media_type = media_type
        self.background = None
        raw = [*_RAW_HEADERS, (b"x-request-id", request_id.encode("latin-1"))]
        if extra:
            raw += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in extra.items()]
        raw += ((b"content-length", b"%d" % len(body)),
                (b"content-type", media_type.encode("latin-1")))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def _code(error: GraphQLError) -> str:
    if _TOO_COMPLEX.search(error.message):
        return "QUERY_TOO_COMPLEX"
    return "BAD_USER_INPUT"


def format_error(error: GraphQLError, *, development: bool) -> dict[str, Any]:
    """The error's JSON, with an `extensions.code` always present and no suggestions."""
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", _code(error))
    formatted["extensions"] = extensions
    if not development:
        formatted["message"] = _SUGGESTION.sub("", formatted["message"])
    return formatted


def _is_request_error(errors: list[GraphQLError]) -> bool:
    """Parse, validation and variable errors: execution never started, so no `data`."""
    return bool(errors) and all(e.path is None for e in errors)


def _formatted(errors: list[GraphQLError], *, development: bool,
               max_errors: int) -> list[dict[str, Any]]:
    """At most `max_errors` errors, then one saying the rest were left out.

    The final error does not say how many: a count of withheld fields could
    tell what a caller may not see (how many carers, say).
    """
    shown = [format_error(e, development=development) for e in errors[:max_errors]]
    if len(errors) > max_errors:
        shown.append({"message": f"More than {max_errors} errors; the rest were left out. "
                                 "Ask for fewer fields to see them.",
                      "extensions": {"code": ERRORS_TRUNCATED}})
    return shown


# Errors inside a result that make the whole response take their HTTP status.
_RESPONSE_STATUS = {AccessBudgetExceededError.code: AccessBudgetExceededError.http_status,
                    BudgetsUnavailableError.code: BudgetsUnavailableError.http_status}


def _status_of(errors: list[GraphQLError]) -> int:
    codes = {e.extensions.get("code") for e in errors if e.extensions}
    return max((status for code, status in _RESPONSE_STATUS.items() if code in codes),
               default=200)


def _dump(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order, nothing escaped beyond what JSON needs.

    orjson writes the same text as `json.dumps(separators=(",", ":"), ensure_ascii=False)`
    (a float's exponent aside: `1e-7`, not `1e-07`; a NaN, which GraphQL's Float refuses
    anyway, would be null), in a fraction of the time. What it refuses (a non-string key, an
    integer beyond 64 bits) goes through `json` as before.
    """
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def result_response(result: ExecutionResult, media_type: str, request_id: str, *,
                    development: bool, max_errors: int) -> Response:
    """200 with `data` once execution started; 400 for request errors in the new media type.

    Statuses are decided on all the errors; the body carries at most `max_errors`.
    """
    errors = list(result.errors or [])
    body: dict[str, Any] = {}
    status = _status_of(errors)
    if _is_request_error(errors):
        status = 400 if media_type == GRAPHQL_RESPONSE else 200
    else:
        body["data"] = result.data
    if errors:
        body["errors"] = _formatted(errors, development=development, max_errors=max_errors)
    return _EncodedResponse(_dump(body), status, request_id, media_type)


def error_response(status: int, code: str, message: str, request_id: str,
                   media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    """A response for a failure before GraphQL execution (auth, body, media type)."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return _EncodedResponse(_dump(body), status, request_id, media_type, headers)
