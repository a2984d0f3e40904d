"""Secret material the operator generates: database passwords, the JWT signing key, the
internal service token. Values already stored in a Secret are reused so reconciling twice
never rotates anything."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "decode_secret_data",
    "generate_password",
    "generate_token",
    "signing_key_material",
]


def generate_password() -> str:
    return secrets.token_urlsafe(24)


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def decode_secret_data(secret: Mapping[str, object] | None) -> dict[str, str]:
    """A Secret's ``data`` decoded to text (empty for a missing Secret)."""
    if not secret:
        return {}
    data = secret.get("data") or {}
    if not isinstance(data, Mapping):
        return {}
    return {
        str(key): base64.b64decode(str(value)).decode("utf-8", errors="replace")
        for key, value in data.items()
    }


def _kid(public_pem: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(public_pem).digest()[:12]).decode().rstrip("=")


def signing_key_material(existing: Mapping[str, str]) -> dict[str, str]:
    """``signing-key.pem`` (Ed25519, PKCS#8 PEM), ``public-key.pem`` and ``kid``.

    An existing valid key is kept (and its ``kid``/public key recomputed if they drifted); a
    missing or unreadable one is replaced with a new key.
    """
    private: Ed25519PrivateKey | None = None
    pem = existing.get("signing-key.pem", "")
    if pem:
        try:
            loaded = serialization.load_pem_private_key(pem.encode(), password=None)
        except ValueError:
            loaded = None
        if isinstance(loaded, Ed25519PrivateKey):
            private = loaded
    if private is None:
        private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "signing-key.pem": private_pem.decode(),
        "public-key.pem": public_pem.decode(),
        "kid": _kid(public_pem),
        "algorithm": "EdDSA",
    }
