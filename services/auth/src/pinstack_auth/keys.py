"""Ed25519 signing keys with a ``kid``, and the JWKS document that publishes their public halves.

The key comes from ``PINSTACK_AUTH_SIGNING_KEY_FILE`` (the operator mounts a PEM) or, without
one, from the auth database, generated on first start. The ``kid`` is the RFC 7638 thumbprint of
the public key, so every replica that loads the same key agrees on it without coordination.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_auth.models import signing_keys
from pinstack_common.security.tokens import ALGORITHM

__all__ = ["KeyRing", "SigningKey", "load_key_file", "load_or_create_db_key"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        x = _b64url(private_key.public_key().public_bytes_raw())
        # RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
        return cls(
            kid=_b64url(hashlib.sha256(canonical.encode()).digest()), private_key=private_key
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        return cls.from_private_key(key)

    def to_pem(self) -> str:
        return self.private_key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        ).decode()

    def public_jwk(self) -> dict[str, str]:
        x = _b64url(self.private_key.public_key().public_bytes_raw())
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


class KeyRing:
    """The key that signs now, plus older keys whose tokens may still be in circulation."""

    def __init__(self, *, signing: SigningKey, verifying: tuple[SigningKey, ...] = ()) -> None:
        self.signing = signing
        self._all = {signing.kid: signing, **{k.kid: k for k in verifying}}

    def public_key(self, kid: str) -> Any:
        key = self._all.get(kid)
        return None if key is None else key.private_key.public_key()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self._all.values()]}

    def jwks_json(self) -> str:
        return json.dumps(self.jwks(), separators=(",", ":"))


def load_key_file(path: Path) -> KeyRing:
    return KeyRing(signing=SigningKey.from_pem(path.read_bytes()))


# Any constant works: it only serialises replicas generating the first key concurrently.
_KEY_LOCK_ID = 0x70696E_61757468  # "pin" "auth"


async def load_or_create_db_key(session: AsyncSession) -> KeyRing:
    """The newest unretired key of the database, generating one the first time.

    Runs in the caller's transaction; the advisory lock makes concurrent first starts agree on
    a single key instead of each signing with its own.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEY_LOCK_ID})
    rows = (
        await session.execute(
            select(signing_keys.c.private_key_pem)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid)
        )
    ).all()
    if rows:
        keys = [SigningKey.from_pem(row.private_key_pem.encode()) for row in rows]
        return KeyRing(signing=keys[0], verifying=tuple(keys[1:]))
    key = SigningKey.generate()
    await session.execute(
        signing_keys.insert().values(
            kid=key.kid, private_key_pem=key.to_pem(), created_at=func.now()
        )
    )
    return KeyRing(signing=key)
