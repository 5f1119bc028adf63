"""Sender-constrained tokens: RFC 9449 DPoP proofs, checked and (for clients) made.

A DPoP request carries `Authorization: DPoP <token>` and a `DPoP` header: a JWT
signed by the client's private key whose public half is in the proof's `jwk`
header. `check_proof` is pure (the clock is passed in); `ProofKeyCache`
remembers each client's checked public key, so that a repeat proof costs one
signature check; `ProofReplayCache` holds the I/O, remembering each proof's
`jti` in Redis so that every gateway process refuses a replay, with a bounded
in-process fallback while Redis is down.

The compact JWS is taken apart here rather than by `joserfc.jws`, whose
decoder would import the `jwk` afresh for every proof; joserfc still checks
the header's registered members, imports the key and does the signature
arithmetic (through `cryptography`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode
from redis.exceptions import RedisError

from gateway.auth.errors import TokenRejectedError
from gateway.auth.keys import MIN_RSA_BITS, deprecated_algorithm_accepted, key_fits, modulus_bits
from gateway.core.records import fast_init

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import redis.asyncio as aioredis
    from joserfc._rfc7515.model import JWSAlgModel

__all__ = [
    "DPOP_PROOF_TYPE",
    "DeferredReplayCheck",
    "DpopProofRejectedError",
    "DpopRequest",
    "ProofKeyCache",
    "ProofReplayCache",
    "access_token_hash",
    "challenge",
    "check_proof",
    "deferred_replay_checks",
    "load_or_create_key",
    "make_proof",
    "normalise_htu",
]

logger = logging.getLogger(__name__)

#: RFC 9449 §4.2: the proof's `typ` (compared exactly, as the RFC writes it).
DPOP_PROOF_TYPE: Final = "dpop+jwt"
#: Proofs are small (a header with a public key and five claims); an RSA-4096
#: key makes the largest we accept about 1.5 kB.
MAX_PROOF_BYTES: Final = 4_096


# Sizes of the base64url segments: a header holding an RSA-4096 `jwk` is under 2 kB,
# five short claims under 1 kB, an RSA-4096 signature 683 characters.
_COMPACT_PROOF: Final = re.compile(
    r"([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{1,1024})\.([A-Za-z0-9_-]{1,1024})")
_PROOF_REGISTRY: Final = JWSRegistry()
#: Asymmetric signature algorithms only: a proof's key is public, so `none` and HMAC
#: could never be proof of possession (RFC 9449 §4.3 step 5). The configured
#: allow-list is applied on top of this.
_SIGNATURE_ALGORITHMS: Final = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
                                          "PS256", "PS384", "PS512", "EdDSA"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DpopProofRejectedError(TokenRejectedError):
    """The DPoP proof (not the token) was refused: RFC 9449's `invalid_dpop_proof`."""


@fast_init
@dataclass(frozen=True, slots=True)
class DpopRequest:
    """What a proof is checked against: the request's `DPoP` header values, method and URL.

    `proofs` holds every `DPoP` header sent (RFC 9449 §4.3: exactly one is
    allowed); `url` is the URL the gateway answers at, query and fragment
    ignored.
    """

    proofs: tuple[str, ...]
    method: str
    url: str


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII token)), without padding."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalise_htu(url: str) -> str:
    """`url` as compared for `htu` (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2-6.2.3).

    Scheme and host lower-cased, a default port dropped, an empty path made
    "/", query and fragment removed. Anything unparseable becomes "", which
    matches nothing.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def check_proof(request: DpopRequest, token: str, jkt: str, *, algorithms: frozenset[str],
                now: float, window_seconds: int, keys: ProofKeyCache | None = None) -> str:
    """The `jti` of a valid proof for `token` bound to thumbprint `jkt`, or a refusal.

    RFC 9449 §4.3, in order: one proof, a compact JWS; header `typ`
    `dpop+jwt`, `alg` in `algorithms`, `jwk` a public key that fits `alg`;
    the signature; `jti`, `htm`, `htu` (itself without query or fragment),
    `iat` within `window_seconds` of `now`, `ath` the hash of `token`; and
    the key's RFC 7638 thumbprint equal to the token's `cnf.jkt`. Replay (the
    `jti` seen before) is the caller's check: it needs shared state.

    `keys` remembers what was learnt from each distinct protected header (the
    imported key and its thumbprint), so a client's second proof costs only
    its signature check; without it every header is checked afresh.
    """
    if len(request.proofs) != 1:
        raise DpopProofRejectedError("not exactly one DPoP proof")
    proof = request.proofs[0]
    if not proof or len(proof) > MAX_PROOF_BYTES:
        raise DpopProofRejectedError("proof missing or too long")
    parts = _COMPACT_PROOF.fullmatch(proof)
    if parts is None:
        raise DpopProofRejectedError("proof malformed")
    header_segment, payload_segment, signature_segment = parts.groups()
    checked = (_checked_header(header_segment, algorithms) if keys is None
               else keys.get(header_segment, algorithms))
    claims = _verified_claims(proof[:parts.end(2)], payload_segment, signature_segment, checked)
    jti = _checked_claims(claims, request, token, now, window_seconds)
    if checked.thumbprint != jkt:
        raise DpopProofRejectedError("proof key does not match cnf.jkt")
    return jti


@dataclass(frozen=True, slots=True)
class _CheckedHeader:
    """What a proof's protected header yields once every check of it has passed."""

    alg: str
    key: Key
    algorithm: JWSAlgModel
    thumbprint: str


class ProofKeyCache:
    """Least-recently-used map from a proof's protected-header segment to its checked key.

    A client signs every proof with one key, so its header (`typ`, `alg`,
    `jwk`) repeats byte for byte. Every check of it except the allow-list
    (which `check_proof` applies each time) depends only on those bytes, so
    it is done once: decoding, the `typ`, `crit` and `jwk` rules, importing
    the key and its RFC 7638 thumbprint. Only headers that passed are kept,
    at most `max_entries` of them (public keys, no request data); the `alg`
    allow-list is applied again on every hit.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _CheckedHeader] = OrderedDict()

    def get(self, header_segment: str, algorithms: frozenset[str]) -> _CheckedHeader:
        """The checked header for `header_segment`, or `DpopProofRejectedError`."""
        checked = self._entries.get(header_segment)
        if checked is not None:
            if checked.alg not in algorithms:
                raise DpopProofRejectedError("proof alg not allowed")
            self._entries.move_to_end(header_segment)
            return checked
        checked = _checked_header(header_segment, algorithms)
        if self._max_entries > 0:
            self._entries[header_segment] = checked
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return checked


def _checked_header(segment: str, algorithms: frozenset[str]) -> _CheckedHeader:
    try:
        header = json.loads(urlsafe_b64decode(segment.encode("ascii")))
    except (ValueError, TypeError, RecursionError) as exc:  # binascii.Error is a ValueError
        raise DpopProofRejectedError("proof malformed") from exc
    if not isinstance(header, dict):
        raise DpopProofRejectedError("proof malformed")
    if header.get("typ") != DPOP_PROOF_TYPE:
        raise DpopProofRejectedError("proof typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _SIGNATURE_ALGORITHMS:
        raise DpopProofRejectedError("proof alg not allowed")
    if "crit" in header or "b64" in header:
        raise DpopProofRejectedError("proof forbidden header")
    try:
        _PROOF_REGISTRY.check_header(header)  # the registered members' types
    except (JoseError, ValueError, TypeError) as exc:
        raise DpopProofRejectedError("proof malformed") from exc
    key = _proof_key(header.get("jwk"), alg)
    return _CheckedHeader(alg, key, _PROOF_REGISTRY.algorithms[alg], key.thumbprint())


def _proof_key(member: object, alg: str) -> Key:
    if not isinstance(member, dict) or _PRIVATE_MEMBERS & member.keys():
        raise DpopProofRejectedError("proof jwk missing or private")
    # Before import: joserfc would accept a short modulus with only a warning.
    if member.get("kty") == "RSA" and modulus_bits(member.get("n")) < MIN_RSA_BITS:
        raise DpopProofRejectedError("proof jwk RSA modulus too short")
    try:
        key = JWKRegistry.import_key(member)
        key.check_key_op("verify")  # a `use` or `key_ops` that forbids it
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise DpopProofRejectedError("proof jwk unusable") from exc
    if key.is_private or not key_fits(alg, key):
        raise DpopProofRejectedError("proof jwk does not fit alg")
    return key


def _verified_claims(signing_input: str, payload_segment: str, signature_segment: str,
                     checked: _CheckedHeader) -> dict[str, Any]:
    # joserfc's algorithm object does the cryptography (for ES*, raw r||s to DER);
    # its compact-JWS decoder is not used, so the header is not decoded again.
    try:
        signature = urlsafe_b64decode(signature_segment.encode("ascii"))
        valid = checked.algorithm.verify(signing_input.encode("ascii"), signature, checked.key)
    except (JoseError, ValueError, TypeError) as exc:
        raise DpopProofRejectedError("proof signature or payload") from exc
    if not valid:
        raise DpopProofRejectedError("proof signature or payload")
    try:
        claims = json.loads(urlsafe_b64decode(payload_segment.encode("ascii")))
    except (ValueError, TypeError, RecursionError) as exc:
        raise DpopProofRejectedError("proof signature or payload") from exc
    if not isinstance(claims, dict):
        raise DpopProofRejectedError("proof signature or payload")
    return claims


def _checked_claims(claims: dict[str, Any], request: DpopRequest, token: str, now: float,
                    window_seconds: int) -> str:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise DpopProofRejectedError("proof jti")
    if claims.get("htm") != request.method:
        raise DpopProofRejectedError("proof htm")
    expected_htu = normalise_htu(request.url)
    htu = claims.get("htu")
    # RFC 9449 §4.2: `htu` is sent without query and fragment. One already in normal
    # form (as a conforming client sends it) need not be normalised again.
    if not expected_htu or not isinstance(htu, str) or "?" in htu or "#" in htu \
            or (htu != expected_htu and normalise_htu(htu) != expected_htu):
        raise DpopProofRejectedError("proof htu")
    iat = claims.get("iat")
    # Written so that NaN (which Python's JSON decoder admits) fails it.
    if isinstance(iat, bool) or not isinstance(iat, int | float) \
            or not abs(now - iat) <= window_seconds:
        raise DpopProofRejectedError("proof iat")
    if claims.get("ath") != access_token_hash(token):
        raise DpopProofRejectedError("proof ath")
    return jti


def challenge(algorithms: Iterable[str], exc: BaseException | None = None) -> str:
    """The `WWW-Authenticate` value for a 401 (RFC 6750 §3, RFC 9449 §7.1).

    Both schemes are offered; only a refused proof gets an `error`, so that
    nothing about the token itself is told to the client.
    """
    dpop = f'DPoP algs="{" ".join(algorithms)}"'
    if isinstance(exc, DpopProofRejectedError):
        dpop += ', error="invalid_dpop_proof"'
    return f'Bearer realm="contactpoint", {dpop}'


@dataclass(frozen=True, slots=True)
class DeferredReplayCheck:
    """A proof's replay check, left for the request's first Redis round trip.

    `key` is to be set once (`SET key 1 NX EX ttl`): set before means a replay.
    If that round trip cannot be made, `now` makes the check on its own (in Redis,
    or in this process while Redis is away), as `ProofReplayCache.first_use` would.
    """

    cache: ProofReplayCache
    key: str
    digest: str
    ttl: int

    async def now(self) -> bool:
        """The check on its own, as `first_use` makes it outside `deferred_replay_checks`."""
        return await self.cache.first_use_of(self.digest, self.ttl)


_DEFERRED: ContextVar[list[DeferredReplayCheck] | None] = ContextVar(
    "dpop_deferred_replay_checks", default=None)


@contextlib.contextmanager
def deferred_replay_checks() -> Iterator[list[DeferredReplayCheck]]:
    """Inside this block, a replay check that would go to Redis is deferred, not made.

    `first_use` then answers True and appends the check to the yielded list; the
    caller owes the check before it does anything for the request (the gateway
    makes it in the request's first round trip, with the rate limit). A check
    that Redis cannot serve now (none configured, or in a back-off) is made at once.
    """
    checks: list[DeferredReplayCheck] = []
    token = _DEFERRED.set(checks)
    try:
        yield checks
    finally:
        _DEFERRED.reset(token)


class ProofReplayCache:
    """Remembers proof `jti`s so that each proof is used once, in every process.

    With Redis: `SET key 1 NX EX ttl`, keys `{key_prefix}dpop:{SHA-256(jkt, jti)}`
    (the digest bounds the key's length and keeps client values out of
    Redis). Without it, or while it is failing (retried after
    `retry_seconds`), a bounded in-process map: a replay to another process
    during an outage is then not caught, which is logged once per outage.
    Inside `deferred_replay_checks` the Redis check is handed to the caller.
    """

    def __init__(self, redis: aioredis.Redis | None = None, key_prefix: str = "cpg:", *,
                 max_entries: int = 100_000, retry_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}dpop:"
        self._max_entries = max_entries
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = 0.0
        self._seen: OrderedDict[str, float] = OrderedDict()

    @property
    def shared(self) -> bool:
        """Whether checks go to Redis now (one is configured, and not in a back-off)."""
        return self._redis is not None and self._clock() >= self._down_until

    async def first_use(self, jkt: str, jti: str, ttl_seconds: int) -> bool:
        """Whether this (`jkt`, `jti`) is new; it is remembered for `ttl_seconds`."""
        digest = hashlib.sha256(f"{jkt}\x00{jti}".encode()).hexdigest()
        deferred = _DEFERRED.get()
        if deferred is not None and self.shared:
            deferred.append(DeferredReplayCheck(self, self._prefix + digest, digest,
                                                max(1, ttl_seconds)))
            return True
        return await self.first_use_of(digest, ttl_seconds)

    async def first_use_of(self, digest: str, ttl_seconds: int) -> bool:
        """`first_use` of the (`jkt`, `jti`) whose digest is `digest`, never deferred."""
        if self._redis is not None and self._clock() >= self._down_until:
            try:
                stored = await self._redis.set(self._prefix + digest, b"1", nx=True,
                                               ex=max(1, ttl_seconds))
            except (RedisError, OSError) as exc:
                self.failed(exc)
            else:
                return bool(stored)
        return self._first_use_here(digest, ttl_seconds)

    def failed(self, exc: BaseException) -> None:
        """Redis failed under a replay check: check in this process for a while."""
        self._down_until = self._clock() + self._retry_seconds
        logger.warning("DPoP replay cache: Redis unavailable (%s), checking in this "
                       "process for %.0f s", type(exc).__name__, self._retry_seconds)

    def _first_use_here(self, digest: str, ttl_seconds: int) -> bool:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        expires = self._seen.get(digest)
        if expires is not None and expires > now:
            return False
        self._seen[digest] = now + ttl_seconds
        # Full: the oldest goes, so a replay older than the eviction horizon would pass;
        # the window check on `iat` still refuses proofs older than the window.
        while len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)
        return True


def make_proof(key: ECKey | RSAKey | OKPKey, method: str, url: str, token: str | None = None,
               *, alg: str = "ES256", now: float | None = None) -> str:
    """A DPoP proof for one request (the client's side of RFC 9449 §4.2).

    `url` is reduced to scheme, host and path; `token`, when given, is bound
    by `ath`. Each call has a fresh random `jti`.
    """
    header = {"typ": DPOP_PROOF_TYPE, "alg": alg, "jwk": dict(key.as_dict(private=False))}
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method,
                              "htu": normalise_htu(url),
                              "iat": int(time.time() if now is None else now)}
    if token is not None:
        claims["ath"] = access_token_hash(token)
    with deprecated_algorithm_accepted(alg):
        return jwt.encode(header, claims, key, algorithms=[alg])


def load_or_create_key(path: str) -> ECKey:
    """The EC P-256 private key in PEM file `path`, created (mode 0600) if missing."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except FileNotFoundError:
        key = ECKey.generate_key("P-256", private=True)
        pem = key.as_pem(private=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        return key
    key = ECKey.import_key(pem)
    if not key.is_private or key.curve_name != "P-256":
        raise ValueError(f"{path} does not hold an EC P-256 private key")
    return key
