"""Authentication: RFC 9068 bearer access tokens verified against the issuer's JWKS.

The app builds one `JwksCache` and one `TokenValidator` in its lifespan,
calls `TokenValidator.authenticate` per request, and closes the cache on
shutdown. `TokenRejectedError` (an `UnauthenticatedError`) means 401;
`JwksUnavailableError` means 503.
"""

from __future__ import annotations

from gateway.auth.errors import JwksUnavailableError, TokenRejectedError
from gateway.auth.jwks import JwksCache, JwksStatus
from gateway.auth.tokens import TokenValidator
from gateway.core.caller import Caller

__all__ = [
    "Caller",
    "JwksCache",
    "JwksStatus",
    "JwksUnavailableError",
    "TokenRejectedError",
    "TokenValidator",
]
