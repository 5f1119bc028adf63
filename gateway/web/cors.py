"""Cross-origin requests from browsers (CORS), by Starlette's `CORSMiddleware`, from `[http]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

if TYPE_CHECKING:
    from gateway.settings import HttpSettings

__all__ = ["LOOPBACK_ORIGINS", "cors_middleware"]

LOOPBACK_ORIGINS = r"http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?"
"""Any page served from this machine over plain HTTP (matched whole, by `re.fullmatch`)."""


def cors_middleware(settings: HttpSettings) -> list[Middleware]:
    """The CORS middleware for the configured origins; none when no origin is allowed.

    No credentials: callers authenticate with the `Authorization` header, never
    a cookie, so a browser never attaches anything of its own and a wildcard is
    never needed. `DPoP` is allowed for sender-constrained tokens; the headers a
    client acts on (challenge, back-off, request id) are exposed.
    """
    if not settings.cors_origins and not settings.cors_allow_loopback:
        return []
    return [Middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_origin_regex=LOOPBACK_ORIGINS if settings.cors_allow_loopback else None,
        allow_methods=("GET", "POST", "OPTIONS"),
        allow_headers=("Authorization", "Content-Type", "DPoP"),
        expose_headers=("WWW-Authenticate", "Retry-After", "X-Request-Id"),
        allow_credentials=False,
        max_age=settings.cors_max_age_seconds,
    )]
