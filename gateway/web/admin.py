"""`/admin/connectors`: a council registers, replaces and removes its own systems while serving.

    GET    /admin/connectors          the systems in service: name, kind, authority,
                                      manifest version, whether configured
    PUT    /admin/connectors/{name}   body: the manifest (TOML, `base_url` in it);
                                      200 replaced, 201 registered
    DELETE /admin/connectors/{name}   204 removed

Each needs an access token from the gateway's issuer (Bearer or DPoP, checked
as for `/graphql`) with the scope `connectors.manage` and an `authority`
claim; a change is allowed only to a system whose present and new manifests
both name that authority (`may_change`). Every refusal answers one line
(`errors[0].message`) with a stable code — 400/413 `BAD_USER_INPUT`, 401
`UNAUTHENTICATED`, 403 `FORBIDDEN`, 404 `NOT_FOUND`, 422 `UPSTREAM_UNAVAILABLE`
(failed health check), 503 `AUDIT_UNAVAILABLE` — and is audited (action
`connector.register` / `connector.remove`, through the refusal recorder);
every change is audited (outcome `applied`) before it takes effect.
The routes exist only when `[registry] dir` is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accountability.audit import AuditEvent
from gateway.accountability.refusals import Refusal
from gateway.auth.dpop import DpopRequest
from gateway.auth.errors import JwksUnavailableError
from gateway.core.errors import AuditUnavailableError, UnauthenticatedError
from gateway.logs import exception_summary
from gateway.web.registrations import MANAGE_SCOPE, RegistrationError
from gateway.web.responses import error_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

    from gateway.core.caller import Caller
    from gateway.settings import Settings
    from gateway.web.registrations import Change
    from gateway.web.runtime import Runtime

__all__ = ["admin_routes"]

log = logging.getLogger("contactpoint.registry")

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_MAX_BODY = 64 * 1024
_CODES = {400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
          413: "BAD_USER_INPUT", 422: "UPSTREAM_UNAVAILABLE", 500: "INTERNAL_SERVER_ERROR",
          503: "AUDIT_UNAVAILABLE"}
_OUTCOMES = {400: "bad_request", 404: "bad_request", 413: "bad_request", 403: "refused",
             422: "refused"}
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def admin_routes(settings: Settings) -> list[Route]:
    """The admin routes, or none when registrations have nowhere to be kept."""
    if settings.registry.dir is None:
        return []
    return [Route("/admin/connectors", list_connectors, methods=["GET"]),
            Route("/admin/connectors/{name}", change_connector, methods=["PUT", "DELETE"])]


async def _caller(request: Request, runtime: Runtime, request_id: str,
                  name: str | None = None) -> Caller:
    """The authenticated caller holding `connectors.manage`; then a well-formed `name`."""
    peer = request.client.host if request.client else None
    try:
        caller = await runtime.validator.authenticate(
            request.headers.get("authorization"),
            DpopRequest(tuple(request.headers.getlist("dpop")), request.method, str(request.url)))
    except UnauthenticatedError as exc:
        runtime.refusals.note(Refusal("authentication", "refused",
                                      getattr(exc, "reason", "refused"), request_id), peer)
        raise RegistrationError(401, exc.message) from None
    if MANAGE_SCOPE not in caller.scopes:
        raise RegistrationError(403, f"the token lacks the scope {MANAGE_SCOPE}")
    if name == "-":
        raise RegistrationError(400, "not a system name: lower case, digits, - and _")
    return caller


async def _body(request: Request) -> str:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise RegistrationError(413, f"a manifest is at most {_MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise RegistrationError(400, "the manifest is not UTF-8 text") from None


def _auditor(runtime: Runtime, caller: Caller,
             request_id: str) -> Callable[[Change], Awaitable[None]]:
    """Records a change durably before it is made; no audit log, no change."""

    async def audit(change: Change) -> None:
        version = "" if change.version is None else f" version={change.version}"
        event = AuditEvent(
            at=dt.datetime.now(dt.UTC), request_id=request_id, action=change.action,
            outcome="applied", subject=caller.subject, organisation=caller.organisation,
            client_id=caller.client_id, purpose=None, case_reference=None, child=None,
            sources=(change.name,), reason=f"authority={change.authority}{version}")
        try:
            await runtime.accountability.audit.record([event])
        except AuditUnavailableError:
            raise RegistrationError(503, "the audit log is unavailable: nothing changed") \
                from None
    return audit


def _refused(request: Request, runtime: Runtime, exc: RegistrationError, request_id: str,
             action: str, caller: Caller | None, name: str) -> Response:
    outcome = _OUTCOMES.get(exc.status)
    if outcome is not None:
        reason = f"{name}: {exc.message}"[:300]
        refusal = Refusal(action, outcome, reason, request_id) if caller is None else Refusal(
            action, outcome, reason, request_id, caller.subject, caller.organisation,
            caller.client_id)
        runtime.refusals.note(refusal, request.client.host if request.client else None)
    log.warning("admin %s %s connector=%s outcome=refused status=%d: %s", request_id, action,
                name, exc.status, exc.message)
    headers = {"WWW-Authenticate": runtime.validator.challenge()} if exc.status == 401 else None
    return error_response(exc.status, _CODES[exc.status], exc.message, request_id,
                          headers=headers)


async def change_connector(request: Request) -> Response:
    """`PUT` (register or replace) or `DELETE` one system; never lets an exception out."""
    runtime: Runtime = request.app.state.runtime
    request_id = uuid.uuid4().hex
    action = "connector.register" if request.method == "PUT" else "connector.remove"
    raw = request.path_params["name"]
    name = raw if _NAME.fullmatch(raw) else "-"  # only a well-formed name reaches the log
    caller = None
    try:
        caller = await _caller(request, runtime, request_id, name)
        audit = _auditor(runtime, caller, request_id)
        registrations = runtime.registrations
        if request.method == "DELETE":
            await registrations.remove(name, caller.authority, audit)
            return Response(status_code=204, headers={**_HEADERS, "X-Request-Id": request_id})
        existed = runtime.registry.current.get(name) is not None
        system = await registrations.register(name, await _body(request), caller.authority,
                                              audit)
    except RegistrationError as exc:
        return _refused(request, runtime, exc, request_id, action, caller, name)
    except JwksUnavailableError as exc:
        return error_response(503, exc.code, exc.message, request_id, headers={"Retry-After": "5"})
    except Exception as exc:  # noqa: BLE001 -- the last line of defence; logged without message
        log.error("admin %s %s connector=%s failed: %s",  # noqa: TRY400 -- no message logged
                  request_id, action, name, exception_summary(exc))
        return error_response(500, "INTERNAL_SERVER_ERROR", "Internal error.", request_id)
    body = {"name": system.name, "kind": system.manifest.kind, "authority": system.authority,
            "version": system.version, "state": "in service"}
    return JSONResponse(body, 200 if existed else 201, {**_HEADERS, "X-Request-Id": request_id})


async def list_connectors(request: Request) -> Response:
    """The systems in service now, with their manifest versions."""
    runtime: Runtime = request.app.state.runtime
    request_id = uuid.uuid4().hex
    try:
        await _caller(request, runtime, request_id)
    except RegistrationError as exc:
        return _refused(request, runtime, exc, request_id, "request", None, "-")
    except JwksUnavailableError as exc:
        return error_response(503, exc.code, exc.message, request_id, headers={"Retry-After": "5"})
    systems = [{"name": s.name, "kind": s.manifest.kind, "authority": s.authority,
                "version": s.version, "configured": s.configured}
               for s in runtime.registry.current.systems]
    return JSONResponse({"connectors": systems}, headers={**_HEADERS, "X-Request-Id": request_id})
