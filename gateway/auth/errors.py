"""Authentication errors: a rejected token (401) and an unreachable key set (503)."""

from __future__ import annotations

from gateway.core.errors import GatewayError, UnauthenticatedError

__all__ = ["JwksUnavailableError", "TokenRejectedError"]


class TokenRejectedError(UnauthenticatedError):
    """A bearer token was refused.

    The client sees only `UnauthenticatedError`'s fixed message; `reason` is for
    us (debug logs, tests). It names the rule that failed, such as "expired" or
    "invalid_claim: aud", and never carries the token or a claim's value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class JwksUnavailableError(GatewayError):
    """No key set has ever been fetched from the issuer, so no token can be checked.

    This is the gateway's fault, not the caller's: answer 503 and let the
    client retry. Once one key set has been fetched it is served while
    refreshes fail (stale-if-error), so this is raised only at start-up.
    """

    code = "UPSTREAM_UNAVAILABLE"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("Authentication is temporarily unavailable; try again shortly.")
