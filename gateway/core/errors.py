"""The gateway's error tree: every class ends in `Error` and carries a stable `code`.

These are the only exceptions whose message reaches a client. Messages name a
field path, a scope or a reason; never a child's data.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessBudgetExceededError",
    "AuditUnavailableError",
    "BadUserInputError",
    "BudgetsUnavailableError",
    "FieldWithheldError",
    "ForbiddenError",
    "GatewayError",
    "NotFoundError",
    "QueryTooComplexError",
    "RateLimitedError",
    "ShieldedError",
    "UnauthenticatedError",
    "UpstreamUnavailableError",
]


class GatewayError(Exception):
    """Base of every client-facing error; `code` goes to `extensions.code`."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    http_status: ClassVar[int] = 200

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class UnauthenticatedError(GatewayError):
    """No valid bearer token. Always the same message: no detail helps an attacker."""

    code = "UNAUTHENTICATED"
    http_status = 401

    def __init__(self) -> None:
        super().__init__("A valid multi-factor access token is required.")


class ForbiddenError(GatewayError):
    code = "FORBIDDEN"


class ShieldedError(GatewayError):
    code = "SHIELDED"


class NotFoundError(GatewayError):
    code = "NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("No child matches.")


class BadUserInputError(GatewayError):
    code = "BAD_USER_INPUT"
    http_status = 400


class RateLimitedError(GatewayError):
    """Too many requests: `retry_after` (whole seconds) feeds the `Retry-After` header."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str = "Too many requests; slow down.", *,
                 retry_after: int, **extensions: object) -> None:
        super().__init__(message, retryAfter=retry_after, **extensions)
        self.retry_after = retry_after


class UpstreamUnavailableError(GatewayError):
    code = "UPSTREAM_UNAVAILABLE"


class QueryTooComplexError(GatewayError):
    code = "QUERY_TOO_COMPLEX"
    http_status = 400


class FieldWithheldError(GatewayError):
    """A field the caller may not see: its code says why (FORBIDDEN, SHIELDED, ...)."""

    def __init__(self, code: str, message: str, **extensions: object) -> None:
        super().__init__(message, **extensions)
        self.extensions["code"] = code


class AccessBudgetExceededError(GatewayError):
    """The caller has looked up as many distinct children as its budget allows for now."""

    code = "ACCESS_BUDGET_EXCEEDED"
    http_status = 429


class BudgetsUnavailableError(GatewayError):
    """Budgets cannot be counted (Redis away) and the configuration says refuse, not share."""

    code = "BUDGETS_UNAVAILABLE"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("Access budgets cannot be counted just now, so no child is looked up; "
                         "try again shortly.")


class AuditUnavailableError(GatewayError):
    """The audit log could not record the access in time, so nothing is released (fail closed)."""

    code = "AUDIT_UNAVAILABLE"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("The audit log is unavailable, so no data is released; try again shortly.")
