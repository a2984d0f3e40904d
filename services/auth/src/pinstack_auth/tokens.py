"""Issuing access and refresh tokens, and reading back the refresh tokens this service issued.

Verification of access tokens is the platform kit's (:mod:`pinstack_common.security.tokens`);
this module is the signing side. Time comes from an injected clock so rotation rules are testable.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from pinstack_auth.errors import invalid_refresh_token
from pinstack_auth.keys import KeyRing
from pinstack_common.security.tokens import (
    ACCESS_AUDIENCE,
    ALGORITHM,
    ISSUER,
    REFRESH_AUDIENCE,
    AccessTokenVerifier,
    Identity,
)

__all__ = [
    "Clock",
    "IssuedRefresh",
    "RefreshClaims",
    "TokenService",
    "hash_token",
    "system_clock",
]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    """What the database keeps of a refresh token: enough to recognise it, useless if leaked."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    token: str
    token_hash: str
    family_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    user_id: int
    family_id: uuid.UUID
    jti: str


class TokenService:
    def __init__(
        self,
        *,
        keys: KeyRing,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        clock: Clock = system_clock,
    ) -> None:
        self._keys = keys
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._clock = clock

        async def local_jwks() -> str:
            return keys.jwks_json()

        # Same verifier as every other service, fed from memory instead of over gRPC.
        self._verifier = AccessTokenVerifier(jwks_source=local_jwks, refetch_interval=0.0)

    @property
    def keys(self) -> KeyRing:
        return self._keys

    def now(self) -> datetime:
        return self._clock()

    def _sign(self, claims: dict[str, object]) -> str:
        key = self._keys.signing
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def issue_access(self, *, user_id: int, session_id: str) -> str:
        now = self._clock()
        return self._sign(
            {
                "iss": ISSUER,
                "aud": ACCESS_AUDIENCE,
                "typ": "access",
                "sub": str(user_id),
                "sid": session_id,
                "jti": uuid.uuid4().hex,
                "iat": int(now.timestamp()),
                "exp": int((now + self._access_ttl).timestamp()),
            }
        )

    def issue_refresh(self, *, user_id: int, family_id: uuid.UUID) -> IssuedRefresh:
        now = self._clock()
        expires_at = now + self._refresh_ttl
        token = self._sign(
            {
                "iss": ISSUER,
                "aud": REFRESH_AUDIENCE,
                "typ": "refresh",
                "sub": str(user_id),
                "sid": str(family_id),
                "jti": uuid.uuid4().hex,
                "iat": int(now.timestamp()),
                "exp": int(expires_at.timestamp()),
            }
        )
        return IssuedRefresh(
            token=token,
            token_hash=hash_token(token),
            family_id=family_id,
            issued_at=now,
            expires_at=expires_at,
        )

    def decode_refresh(self, token: str) -> RefreshClaims:
        """The claims of a refresh token this service signed; anything else is invalid."""
        if not token or len(token) > 4096:
            raise invalid_refresh_token()
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            key = self._keys.public_key(kid)
            if key is None:
                raise invalid_refresh_token()
            # Expiry is checked against the injected clock below, not the wall clock.
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=REFRESH_AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": ["exp", "sub", "sid", "typ", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            if claims["typ"] != "refresh" or int(claims["exp"]) <= self._clock().timestamp():
                raise invalid_refresh_token()
            return RefreshClaims(
                user_id=int(claims["sub"]),
                family_id=uuid.UUID(str(claims["sid"])),
                jti=str(claims["jti"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise invalid_refresh_token() from error

    async def verify_access(self, authorization: str | None) -> Identity:
        """The caller of an RPC, from the bearer token the gateway forwarded."""
        return await self._verifier.verify_header(authorization)
