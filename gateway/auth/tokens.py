"""Bearer-token authentication: RFC 9068 JWT access tokens, checked as RFC 8725 advises."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError

from gateway.auth.claims import caller_from_claims, key_binding
from gateway.auth.devissuer import DEV_ISSUER, dev_key
from gateway.auth.dpop import (
    DpopProofRejectedError,
    DpopRequest,
    ProofKeyCache,
    ProofReplayCache,
    challenge,
    check_proof,
)
from gateway.auth.errors import TokenRejectedError
from gateway.auth.keys import deprecated_algorithm_accepted, key_fits
from gateway.auth.tokencache import TokenCache
from gateway.telemetry.tracing import traced

if TYPE_CHECKING:
    from collections.abc import Callable

    from joserfc.jwk import Key

    from gateway.auth.jwks import JwksCache
    from gateway.core.caller import Caller
    from gateway.settings import AuthSettings

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "FORBIDDEN_HEADERS",
    "TokenValidator",
    "bearer_token",
    "check_header",
    "credentials",
]

logger = logging.getLogger(__name__)

#: RFC 9068 §2.1: the `typ` of a JWT access token, compared case-insensitively.
ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
#: Header parameters refused outright: the key must come from our JWKS, never
#: from the token (`jku`, `jwk`, `x5u`, `x5c`), and no extension may be
#: declared critical (`crit`) or change what is signed (`b64`, RFC 7797).
FORBIDDEN_HEADERS: Final = frozenset({"crit", "jku", "jwk", "x5u", "x5c", "b64"})
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenValidator:
    """Turns an `Authorization` header into a `Caller`, or refuses it.

    Every refusal is a `TokenRejectedError` (an `UnauthenticatedError`: 401,
    one fixed message); its `reason` is logged at DEBUG. `JwksUnavailableError`
    (503) passes through when no key set was ever fetched.

    Validated tokens are remembered (bounded LRU of `cache_size` entries,
    never past `exp`) so that a repeated token costs a hash, not a signature
    check. `clock` is wall-clock seconds, injectable for tests.

    Sender-constrained tokens (RFC 9449): a token with `cnf.jkt` is accepted
    only as `Authorization: DPoP` with a valid proof for this request, whose
    `jti` `replay` has not seen (each client's proof key is checked once and
    remembered, bounded); a `DPoP` credential must be such a token;
    and with `dpop = "required"` (or the token's client in
    `dpop_required_clients`) an unbound token is refused. The replay cache
    defaults to one in this process; give it Redis to share it.

    The development issuer's key is derived from a seed in the source code,
    so anyone can sign with it. Unless `allow_development_key` is true, a
    configuration naming `DEV_ISSUER` is refused at construction and a token
    verified by that key is refused, whatever JWKS it was published in.
    """

    def __init__(
        self,
        settings: AuthSettings,
        jwks: JwksCache,
        clock: Callable[[], float] = time.time,
        *,
        cache_size: int = 4096,
        allow_development_key: bool = False,
        replay: ProofReplayCache | None = None,
    ) -> None:
        if settings.issuer == DEV_ISSUER and not allow_development_key:
            raise ValueError("the development issuer is accepted only in development mode")
        self._settings = settings
        self._algorithms = frozenset(settings.algorithms)
        self._jwks = jwks
        self._clock = clock
        self._cache = TokenCache(cache_size)
        self._dev_thumbprint = None if allow_development_key else dev_key().thumbprint()
        self._replay = ProofReplayCache() if replay is None else replay
        self._proof_keys = ProofKeyCache()
        self._dpop_required_clients = frozenset(settings.dpop_required_clients)

    def challenge(self, exc: BaseException | None = None) -> str:
        """The `WWW-Authenticate` value to send with a 401 for `exc`."""
        return challenge(self._settings.algorithms, exc)

    @traced("authenticate")
    async def authenticate(self, authorization: str | None,
                           dpop: DpopRequest | None = None) -> Caller:
        """The caller proved by `authorization` (an HTTP `Authorization` value).

        `dpop` describes the request (its `DPoP` headers, method and URL); it
        is needed only for a `DPoP` credential, and without it one is refused.
        """
        try:
            return await self._authenticate(authorization, dpop)
        except TokenRejectedError as exc:
            logger.debug("access token rejected: %s", exc.reason)
            raise

    async def _authenticate(self, authorization: str | None,
                            dpop: DpopRequest | None) -> Caller:
        scheme, token = credentials(authorization, self._settings.max_token_bytes)
        now = self._clock()
        entry = self._cache.lookup(token, now)
        if entry is None:
            alg, kid = check_header(_protected_header(token), self._algorithms)
            key = await self._key(alg, kid)
            claims = _verified_claims(token, key, alg)
            now = self._clock()
            entry = caller_from_claims(claims, self._settings, now), key_binding(claims)
            self._cache.put(token, entry[0], now, entry[1])
        caller, jkt = entry
        await self._check_binding(scheme, token, caller, jkt, dpop)
        return caller

    async def _check_binding(self, scheme: str, token: str, caller: Caller, jkt: str | None,
                             dpop: DpopRequest | None) -> None:
        """RFC 9449 §7: the scheme must match the binding, and a bound token needs a proof."""
        if scheme == "bearer":
            if jkt is not None:
                raise TokenRejectedError("bound token sent as bearer")
            if self._settings.dpop == "required" or caller.client_id in \
                    self._dpop_required_clients:
                raise TokenRejectedError("dpop required")
            return
        if jkt is None:
            raise TokenRejectedError("dpop scheme with an unbound token")
        if dpop is None:
            raise TokenRejectedError("dpop request details missing")
        if self._settings.dpop_public_url is not None:
            dpop = DpopRequest(dpop.proofs, dpop.method, self._settings.dpop_public_url)
        window = self._settings.dpop_proof_window_seconds
        jti = check_proof(dpop, token, jkt, algorithms=self._algorithms, now=self._clock(),
                          window_seconds=window, keys=self._proof_keys)
        # Remembered past the far edge of the window, so it cannot come back in it.
        if not await self._replay.first_use(jkt, jti, 2 * window + 1):
            raise DpopProofRejectedError("proof replayed")

    async def _key(self, alg: str, kid: str) -> Key:
        key = await self._jwks.key_for(kid)
        if key is None:
            raise TokenRejectedError("unknown kid")
        if not key_fits(alg, key):
            raise TokenRejectedError("key does not fit alg")
        if self._dev_thumbprint is not None and key.thumbprint() == self._dev_thumbprint:
            raise TokenRejectedError("development key")
        return key


def bearer_token(authorization: str | None, max_bytes: int) -> str:
    """The compact JWS in an RFC 6750 `Bearer` credential, refused if over `max_bytes`."""
    scheme, token = credentials(authorization, max_bytes)
    if scheme != "bearer":
        raise TokenRejectedError("not a bearer credential")
    return token


def credentials(authorization: str | None, max_bytes: int) -> tuple[str, str]:
    """The scheme (`bearer` or `dpop`, lower-case) and compact JWS of `authorization`."""
    if not authorization:
        raise TokenRejectedError("no credentials")
    scheme, _, token = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme not in {"bearer", "dpop"}:
        raise TokenRejectedError("not a bearer or DPoP credential")
    token = token.strip(" ")
    if not token:
        raise TokenRejectedError("no credentials")
    # Length in characters first: the pattern below admits only ASCII, so the
    # two agree for every token that gets further.
    if len(token) > max_bytes:
        raise TokenRejectedError("too long")
    if not _COMPACT_JWS.fullmatch(token):
        raise TokenRejectedError("malformed")
    return scheme, token


def check_header(header: object, algorithms: frozenset[str]) -> tuple[str, str]:
    """The `(alg, kid)` of an acceptable protected header, or `TokenRejectedError`.

    `alg` is checked first, so `none` and HMAC algorithms are refused before
    any key is looked up.
    """
    if not isinstance(header, dict):
        raise TokenRejectedError("malformed")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise TokenRejectedError("alg not allowed")
    if not FORBIDDEN_HEADERS.isdisjoint(header):
        raise TokenRejectedError("forbidden header")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise TokenRejectedError("not an access token")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejectedError("no kid")
    return alg, kid


def _protected_header(token: str) -> object:
    try:
        return jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRejectedError("malformed") from exc


def _verified_claims(token: str, key: Key, alg: str) -> dict[str, Any]:
    try:
        with deprecated_algorithm_accepted(alg):
            return jwt.decode(token, key, algorithms=[alg]).claims
    except BadSignatureError as exc:
        raise TokenRejectedError("bad signature") from exc
    # RecursionError: a deeply nested payload, which only the issuer could have signed.
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise TokenRejectedError("malformed") from exc
