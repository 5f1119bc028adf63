"""Which published keys may verify tokens: a pure filter over a JWK Set (RFC 7517, RFC 8725)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, Final

from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "MIN_RSA_BITS",
    "JwksDocumentError",
    "deprecated_algorithm_accepted",
    "key_fits",
    "modulus_bits",
    "usable_keys",
]

logger = logging.getLogger(__name__)

#: NIST SP 800-131A: shorter RSA moduli are not accepted for signatures.
MIN_RSA_BITS: Final = 2048

# Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_EDDSA_CURVES = frozenset({"Ed25519", "Ed448"})


class JwksDocumentError(ValueError):
    """The document is not a JWK Set: not an object with a "keys" array."""


class _UnusableKeyError(ValueError):
    """One member of the set is dropped; the message says why (no key material)."""


def key_fits(alg: str, key: Key) -> bool:
    """Whether `key` may verify a signature made with `alg` (RFC 8725 §3.1).

    The key type and curve must be the ones `alg` is defined for, and a key
    that names its own `alg` is bound to that algorithm alone.
    """
    if key.alg is not None and key.alg != alg:
        return False
    if alg in _RSA_ALGORITHMS:
        return isinstance(key, RSAKey)
    if alg in _EC_CURVES:
        return isinstance(key, ECKey) and key.curve_name == _EC_CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.curve_name in _EDDSA_CURVES
    return False


def usable_keys(document: object, algorithms: Iterable[str]) -> dict[str, Key]:
    """The public signing keys of a JWK Set that fit `algorithms`, by `kid`.

    Dropped, each with a warning that names only its position and reason:
    members that are not objects, carry private or symmetric key material,
    are not for signatures (`use`, `key_ops`), have no `kid`, name an `alg`
    outside the allow-list, are RSA shorter than `MIN_RSA_BITS`, cannot be
    imported, or fit no allowed algorithm. A `kid` that appears twice is
    ambiguous, so both are dropped. Raises `JwksDocumentError` when the
    document is not a JWK Set at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksDocumentError("the document is not a JWK Set")
    allowed = frozenset(algorithms)
    found: dict[str, Key] = {}
    duplicated: set[str] = set()
    for index, member in enumerate(document["keys"]):
        try:
            kid, key = _usable_key(member, allowed)
        except _UnusableKeyError as exc:
            logger.warning("JWKS key #%d dropped: %s", index, exc)
            continue
        if kid in found:
            duplicated.add(kid)
        found[kid] = key
    if duplicated:
        logger.warning("JWKS keys dropped: %d kid(s) appear more than once", len(duplicated))
        for kid in duplicated:
            del found[kid]
    return found


def _usable_key(member: object, allowed: frozenset[str]) -> tuple[str, Key]:
    if not isinstance(member, dict):
        raise _UnusableKeyError("not a JSON object")
    _check_members(member, allowed)
    try:
        key = JWKRegistry.import_key(member)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _UnusableKeyError("not an importable key") from exc
    if key.is_private:  # _check_members should have caught it; joserfc has the last word
        raise _UnusableKeyError("private key material")
    if not any(key_fits(alg, key) for alg in allowed):
        raise _UnusableKeyError("fits no allowed algorithm")
    return member["kid"], key


def _check_members(member: dict[str, Any], allowed: frozenset[str]) -> None:
    if _PRIVATE_MEMBERS & member.keys():
        raise _UnusableKeyError("private or symmetric key material")
    if member.get("use", "sig") != "sig":
        raise _UnusableKeyError("use is not sig")
    operations = member.get("key_ops")
    if operations is not None and (not isinstance(operations, list) or "verify" not in operations):
        raise _UnusableKeyError("key_ops does not allow verify")
    kid = member.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _UnusableKeyError("no kid")
    if "alg" in member and member["alg"] not in allowed:
        raise _UnusableKeyError("alg not in the allow-list")
    # Checked before import: joserfc would accept a short modulus with only a warning.
    if member.get("kty") == "RSA" and modulus_bits(member.get("n")) < MIN_RSA_BITS:
        raise _UnusableKeyError("RSA modulus too short")


def modulus_bits(n: object) -> int:
    """The bit length of a JWK's base64url `n` member; 0 when it is not one."""
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


@contextlib.contextmanager
def deprecated_algorithm_accepted(alg: str) -> Iterator[None]:
    """Silence joserfc's warning that RFC 9864 deprecates `EdDSA`.

    The operator allowed it in the settings; warning on every token adds
    nothing (and fails a run with warnings as errors).
    """
    if alg != "EdDSA":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning)
        yield
