"""`GET /schema.graphql`: the public schema's SDL, for frontend tooling.

In production introspection is off, so this is how codegen and editors get
the schema there; it then needs a valid access token (any scope), checked as
`/graphql` checks one. In development it is open. The body is what the code
prints, which the drift test keeps equal to the committed `schema.graphql`.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import cache
from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway.accountability.refusals import Refusal
from gateway.auth.dpop import DpopRequest
from gateway.auth.errors import JwksUnavailableError
from gateway.core.errors import UnauthenticatedError
from gateway.web.responses import error_response
from resolvers.schema import public_schema

if TYPE_CHECKING:
    from starlette.requests import Request

    from gateway.web.runtime import Runtime

__all__ = ["MEDIA_TYPE", "schema_endpoint"]

MEDIA_TYPE = "text/plain; charset=utf-8"
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@cache
def _document() -> tuple[bytes, str]:
    """The SDL and its strong ETag, printed once per process (the schema is fixed at start)."""
    body = public_schema().encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*`, or any listed tag equal to ours under weak comparison."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def _refusal(request: Request, runtime: Runtime, request_id: str) -> Response | None:
    """None if the request may read the schema; else the 401 (or 503) `/graphql` would send."""
    if runtime.settings.development:
        return None
    refusals, peer = runtime.refusals, request.client.host if request.client else None
    try:
        await runtime.validator.authenticate(
            request.headers.get("authorization"),
            DpopRequest(tuple(request.headers.getlist("dpop")), request.method, str(request.url)))
    except UnauthenticatedError as exc:
        refusals.note(Refusal("authentication", "refused", getattr(exc, "reason", "refused"),
                              request_id), peer)
        return error_response(exc.http_status, exc.code, exc.message, request_id,
                              headers={"WWW-Authenticate": runtime.validator.challenge(exc)})
    except JwksUnavailableError as exc:
        refusals.note(Refusal("authentication", "refused", "keys unavailable", request_id), peer)
        return error_response(exc.http_status, exc.code, exc.message, request_id,
                              headers={"Retry-After": "5"})
    return None


async def schema_endpoint(request: Request) -> Response:
    """The SDL with an ETag; 304 when `If-None-Match` names it (after authentication)."""
    runtime: Runtime = request.app.state.runtime
    refused = await _refusal(request, runtime, uuid.uuid4().hex)
    if refused is not None:
        return refused
    body, etag = _document()
    headers = {**_HEADERS, "ETag": etag}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, 200, headers, media_type=MEDIA_TYPE)
