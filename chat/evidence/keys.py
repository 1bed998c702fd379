"""Ed25519 checkpoint keys and signed checkpoints.

A checkpoint is the JSON object ``{"v", "log", "size", "root", "at", "key_id"}``; its
signature is Ed25519 over the object's RFC 8785 form. ``key_id`` is the first 16 hex digits
of SHA-256 over the raw 32-byte public key. Public keys are published as PEM
(SubjectPublicKeyInfo); every key ever used stays in ``evidence_keys`` with the time it was
retired, so old checkpoints remain verifiable after a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .canonical import canonical

LOG_NAME = "tsunagu-evidence"
CHECKPOINT_VERSION = 1


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM, or from the base64 of its 32 raw bytes; ValueError otherwise."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("the key is neither PEM nor base64") from None
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, body: dict[str, Any]) -> str:
        return base64.b64encode(self.private.sign(canonical(body))).decode()

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """Read the PEM private key at ``path``, creating it (mode 0600) if it is missing."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return cls(key)


def checkpoint_body(*, size: int, root_hex: str, at: int, kid: str) -> dict[str, Any]:
    return {"v": CHECKPOINT_VERSION, "log": LOG_NAME, "size": size, "root": root_hex,
            "at": at, "key_id": kid}


def verify_signature(public: Ed25519PublicKey, body: dict[str, Any], signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(body))
    except (InvalidSignature, ValueError):
        return False
    return True
