"""From a verified token's claims to a `Caller`: RFC 9068 access-token claim rules."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from joserfc.errors import ClaimError
from joserfc.jwt import JWTClaimsRegistry

from gateway.auth.errors import TokenRejectedError
from gateway.core.caller import Caller

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.settings import AuthSettings

__all__ = ["caller_from_claims", "key_binding"]


def caller_from_claims(claims: Mapping[str, Any], settings: AuthSettings, now: float) -> Caller:
    """The caller that verified `claims` describe, or `TokenRejectedError`.

    joserfc's `JWTClaimsRegistry` checks the registered claims: `iss` equal to
    the issuer, `aud` equal to or containing the audience, `exp` present and
    `nbf`/`iat` (when present) against `now` with `leeway_seconds`, `sub`,
    `client_id`, `iss`, `aud`, `jti` present and not blank. The rules
    it cannot express are checked here: the types of `client_id`, `scope`,
    `amr` and `org`, and that `amr` proves multi-factor sign-in.
    """
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=settings.leeway_seconds,
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": settings.audience},
        exp={"essential": True},
        sub={"essential": True},
        client_id={"essential": True},
        jti={"essential": True},  # RFC 9068 §2.2: REQUIRED
    )
    try:
        registry.validate(dict(claims))
    except ClaimError as exc:
        # joserfc names the claim (or "exp" for expiry), never its value.
        raise TokenRejectedError(f"{exc.error}: {exc.claim}") from exc
    return Caller(
        subject=_string(claims, "sub"),
        client_id=_string(claims, "client_id"),
        organisation=_organisation(claims),
        scopes=_scopes(claims),
        amr=_amr(claims, settings.mfa_values),
        expires_at=math.floor(claims["exp"]),
        token_id=_string(claims, "jti"),
        roles=_roles(claims),
        subject_nhs_number=_optional_string(claims, "subject_nhs_number"),
        authority=_optional_string(claims, "authority"),
    )


def key_binding(claims: Mapping[str, Any]) -> str | None:
    """The token's RFC 9449 §6.1 `cnf.jkt` (its key's thumbprint), or None when unbound."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    if not isinstance(cnf, dict):
        raise TokenRejectedError("wrong type: cnf")
    jkt = cnf.get("jkt")
    if jkt is None:
        # Another confirmation method (e.g. RFC 8705 `x5t#S256`) that we cannot check.
        raise TokenRejectedError("unsupported cnf")
    if not isinstance(jkt, str) or not jkt:
        raise TokenRejectedError("wrong type: cnf.jkt")
    return jkt


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str):
        raise TokenRejectedError(f"wrong type: {name}")
    return value


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TokenRejectedError(f"wrong type: {name}")
    return value


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenRejectedError("wrong type: roles")
    return frozenset(roles)


def _organisation(claims: Mapping[str, Any]) -> str | None:
    org = claims.get("org")
    if org is None:
        return None
    if not isinstance(org, str) or not org:
        raise TokenRejectedError("wrong type: org")
    return org


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    # RFC 6749 §3.3: scope tokens separated by single spaces; absent means none.
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise TokenRejectedError("wrong type: scope")
    return frozenset(scope.split(" ")) - {""}


def _amr(claims: Mapping[str, Any], mfa_values: tuple[str, ...]) -> frozenset[str]:
    amr = claims.get("amr")
    if amr is None:
        raise TokenRejectedError("missing MFA")
    if not isinstance(amr, list) or not all(isinstance(value, str) for value in amr):
        raise TokenRejectedError("wrong type: amr")
    methods = frozenset(amr)
    if methods.isdisjoint(mfa_values):
        raise TokenRejectedError("missing MFA")
    return methods
