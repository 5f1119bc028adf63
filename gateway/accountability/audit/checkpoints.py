"""Signed checkpoints: the gateway's key vouches for the chain hash at a sequence number.

The hash chain alone shows that rows were edited, but anyone who can write the
database can recompute it after an edit. A checkpoint signs the chain hash every
`checkpoint_every` events with a key the database never holds, so a rewrite of
any event before the newest checkpoint no longer matches a signature.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.crypto.keys import derive_key
from gateway.settings import AuditSettings, ConfigError

__all__ = ["Checkpoint", "CheckpointKey", "CheckpointVerifier"]

_DOMAIN = b"contactpoint-audit-checkpoint/v1\x00"

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The signed statement "after event `seq` the chain hash is `chain_hash`".

    `prev_seq` is the previous checkpoint's seq (0 for the first), so a deleted
    checkpoint leaves a visible gap; `every` is the interval the writer used.
    """

    seq: int
    prev_seq: int
    every: int
    chain_hash: bytes
    key_id: str
    algorithm: str
    signature: bytes

    def message(self) -> bytes:
        """The signed bytes: a domain prefix and canonical JSON of every field but the signature."""
        body = {"alg": self.algorithm, "chain": self.chain_hash.hex(), "every": self.every,
                "key": self.key_id, "prev": self.prev_seq, "seq": self.seq}
        return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class CheckpointVerifier:
    """The public half of the checkpoint key: verifies checkpoints and can sign nothing.

    `contactpoint audit verify --public-key` uses only this, so an auditor needs no secret.
    """

    def __init__(self, public_key: _PublicKey) -> None:
        self._public = public_key
        spki = public_key.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = hashlib.sha256(spki).hexdigest()[:16]
        """First 16 hex digits of SHA-256 of the public key (SubjectPublicKeyInfo, DER)."""
        ed = isinstance(public_key, ed25519.Ed25519PublicKey)
        self.algorithm = "Ed25519" if ed else "ES256"

    @classmethod
    def from_pem(cls, pem: bytes) -> CheckpointVerifier:
        """A PEM public key (Ed25519 or P-256); raises `ConfigError` for anything else."""
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise ConfigError("the audit public key is not a PEM public key") from None
        if isinstance(key, ed25519.Ed25519PublicKey) or (
                isinstance(key, ec.EllipticCurvePublicKey)
                and isinstance(key.curve, ec.SECP256R1)):
            return cls(key)
        raise ConfigError("the audit public key must be Ed25519 or P-256")

    def public_pem(self) -> str:
        """The public key as PEM (SubjectPublicKeyInfo), for `contactpoint audit public-key`."""
        return self._public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def verify(self, checkpoint: Checkpoint) -> bool:
        """Whether this key signed exactly this checkpoint."""
        if checkpoint.key_id != self.key_id or checkpoint.algorithm != self.algorithm:
            return False
        try:
            if isinstance(self._public, ed25519.Ed25519PublicKey):
                self._public.verify(checkpoint.signature, checkpoint.message())
            else:
                self._public.verify(checkpoint.signature, checkpoint.message(),
                                    ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


class CheckpointKey(CheckpointVerifier):
    """The gateway's checkpoint key (Ed25519 or ECDSA P-256): signs; its public half verifies."""

    def __init__(self, private_key: _PrivateKey) -> None:
        super().__init__(private_key.public_key())
        self._private = private_key

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> CheckpointKey:
        """The configured key file, or an Ed25519 key derived from the pseudonym secret.

        Raises `ConfigError` (one line) if the file is unreadable or holds another kind of key.
        """
        if settings.checkpoint_key_file is None:
            seed = derive_key(settings.pseudonym_secret.get_secret_value(), "audit-checkpoint")
            return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
        path = Path(settings.checkpoint_key_file)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(f"cannot read audit checkpoint key {path}: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise ConfigError(f"audit checkpoint key {path} is not an unencrypted PEM "
                              "private key") from None
        if isinstance(key, ed25519.Ed25519PrivateKey) or (
                isinstance(key, ec.EllipticCurvePrivateKey)
                and isinstance(key.curve, ec.SECP256R1)):
            return cls(key)
        raise ConfigError(f"audit checkpoint key {path} must be Ed25519 or P-256")

    def sign(self, seq: int, prev_seq: int, every: int, chain_hash: bytes) -> Checkpoint:
        """A checkpoint for the chain hash after event `seq`."""
        unsigned = Checkpoint(seq, prev_seq, every, chain_hash, self.key_id, self.algorithm, b"")
        message = unsigned.message()
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            signature = self._private.sign(message)
        else:
            signature = self._private.sign(message, ec.ECDSA(hashes.SHA256()))
        return Checkpoint(seq, prev_seq, every, chain_hash, self.key_id, self.algorithm, signature)
