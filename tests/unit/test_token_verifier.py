"""The shared access-token verifier: typing, audiences, and the cache of verified tokens."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pinstack_common.context import caller_authorization
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.security.tokens import (
    ACCESS_AUDIENCE,
    ALGORITHM,
    ISSUER,
    REFRESH_AUDIENCE,
    AccessTokenVerifier,
)

KEY = Ed25519PrivateKey.generate()
JWK = {**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(KEY.public_key())), "kid": "k1"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def sign(*, typ: str = "access", audience: str = ACCESS_AUDIENCE, expires_in: int = 60) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": audience, "typ": typ, "sub": "7", "sid": "s1",
        "iat": now, "exp": now + expires_in,
    }  # fmt: skip
    return jwt.encode(claims, KEY, algorithm=ALGORITHM, headers={"kid": "k1"})


def verifier(clock: Clock) -> tuple[AccessTokenVerifier, list[int]]:
    fetches: list[int] = []

    async def jwks() -> str:
        fetches.append(1)
        return json.dumps({"keys": [JWK]})

    return AccessTokenVerifier(jwks_source=jwks, clock=clock, cache_size=2), fetches


async def test_access_token_verifies_and_is_remembered_until_it_expires() -> None:
    clock = Clock()
    check, fetches = verifier(clock)
    token = sign(expires_in=60)
    first = await check.verify_header(f"Bearer {token}")
    assert (first.user_id, first.session_id) == (7, "s1")
    assert await check.verify(token) is first  # served from the cache
    assert len(fetches) == 1
    clock.now += 61
    with pytest.raises(UnauthenticatedError, match=r"^token expired$"):
        await check.verify(token)


async def test_refresh_tokens_and_garbage_are_refused() -> None:
    check, _ = verifier(Clock())
    with pytest.raises(UnauthenticatedError, match=r"^unauthenticated$"):
        await check.verify(sign(typ="refresh", audience=REFRESH_AUDIENCE))
    with pytest.raises(UnauthenticatedError, match=r"^invalid token$"):
        await check.verify("not-a-jwt")
    with pytest.raises(UnauthenticatedError, match=r"^invalid token$"):
        await check.verify_header("Token abc")


async def test_the_cache_is_bounded() -> None:
    check, _ = verifier(Clock())
    tokens = [sign(expires_in=60 + i) for i in range(3)]
    for token in tokens:
        await check.verify(token)
    assert len(check._verified) == 2
    assert tokens[0] not in check._verified


async def test_verify_caller_reads_the_forwarded_authorization() -> None:
    check, _ = verifier(Clock())
    with pytest.raises(UnauthenticatedError):
        await check.verify_caller()  # nothing forwarded: no caller
    previous = caller_authorization.set(f"Bearer {sign()}")
    try:
        assert (await check.verify_caller()).user_id == 7
    finally:
        caller_authorization.reset(previous)
