"""Signing keys, token typing and refresh-token reading, with a controllable clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from pinstack_auth.keys import KeyRing, SigningKey, load_key_file
from pinstack_auth.tokens import TokenService, hash_token
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.security.tokens import ACCESS_AUDIENCE, REFRESH_AUDIENCE, AccessTokenVerifier


class FakeClock:
    def __init__(self) -> None:
        # Close to real time: the platform verifier checks access-token expiry on the wall clock.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing(signing=SigningKey.generate())


@pytest.fixture
def tokens(keys: KeyRing, clock: FakeClock) -> TokenService:
    return TokenService(
        keys=keys, access_ttl=timedelta(minutes=15), refresh_ttl=timedelta(days=30), clock=clock
    )


def _verifier(keys: KeyRing) -> AccessTokenVerifier:
    async def source() -> str:
        return keys.jwks_json()

    return AccessTokenVerifier(jwks_source=source)


def test_kid_is_a_stable_thumbprint() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_pem(key.to_pem().encode())
    assert again.kid == key.kid
    assert SigningKey.generate().kid != key.kid


def test_jwks_publishes_okp_public_keys_only(keys: KeyRing) -> None:
    document = json.loads(keys.jwks_json())
    [jwk] = document["keys"]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert jwk["kid"] == keys.signing.kid
    assert "d" not in jwk  # no private part


def test_key_file_is_loaded(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "signing.pem"
    path.write_text(key.to_pem())
    assert load_key_file(path).signing.kid == key.kid


def test_key_file_must_be_ed25519(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "wrong.pem"
    path.write_bytes(pem)
    with pytest.raises(ValueError, match="Ed25519"):
        load_key_file(path)


async def test_access_token_verifies_with_the_platform_verifier(
    tokens: TokenService, keys: KeyRing
) -> None:
    token = tokens.issue_access(user_id=42, session_id="s-1")
    header = jwt.get_unverified_header(token)
    assert header["kid"] == keys.signing.kid
    assert header["alg"] == "EdDSA"
    identity = await _verifier(keys).verify(token)
    assert identity.user_id == 42
    assert identity.session_id == "s-1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == ACCESS_AUDIENCE
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 15 * 60


async def test_refresh_token_is_never_a_bearer_token(tokens: TokenService, keys: KeyRing) -> None:
    issued = tokens.issue_refresh(user_id=42, family_id=uuid.uuid4())
    with pytest.raises(UnauthenticatedError, match=r"^unauthenticated$"):
        await _verifier(keys).verify(issued.token)


def test_access_token_is_never_a_refresh_token(tokens: TokenService) -> None:
    access = tokens.issue_access(user_id=42, session_id=str(uuid.uuid4()))
    with pytest.raises(UnauthenticatedError, match=r"^invalid refresh token$"):
        tokens.decode_refresh(access)


def test_refresh_token_round_trip(tokens: TokenService) -> None:
    family = uuid.uuid4()
    issued = tokens.issue_refresh(user_id=7, family_id=family)
    claims = tokens.decode_refresh(issued.token)
    assert (claims.user_id, claims.family_id) == (7, family)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert payload["aud"] == REFRESH_AUDIENCE
    assert payload["typ"] == "refresh"
    assert payload["sid"] == str(family)
    assert payload["jti"]
    assert issued.token_hash == hash_token(issued.token)
    assert issued.token not in issued.token_hash
    assert issued.expires_at - issued.issued_at == timedelta(days=30)


def test_refresh_token_expires_on_the_injected_clock(
    tokens: TokenService, clock: FakeClock
) -> None:
    issued = tokens.issue_refresh(user_id=7, family_id=uuid.uuid4())
    clock.now += timedelta(days=30) - timedelta(seconds=1)
    tokens.decode_refresh(issued.token)
    clock.now += timedelta(seconds=1)
    with pytest.raises(UnauthenticatedError, match=r"^invalid refresh token$"):
        tokens.decode_refresh(issued.token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000])
def test_malformed_refresh_tokens(tokens: TokenService, token: str) -> None:
    with pytest.raises(UnauthenticatedError, match=r"^invalid refresh token$"):
        tokens.decode_refresh(token)


def test_refresh_token_from_another_key_is_rejected(tokens: TokenService, clock: FakeClock) -> None:
    stranger = TokenService(
        keys=KeyRing(signing=SigningKey.generate()),
        access_ttl=timedelta(minutes=1),
        refresh_ttl=timedelta(days=1),
        clock=clock,
    )
    forged = stranger.issue_refresh(user_id=7, family_id=uuid.uuid4())
    with pytest.raises(UnauthenticatedError, match=r"^invalid refresh token$"):
        tokens.decode_refresh(forged.token)


def test_tampered_refresh_token_is_rejected(tokens: TokenService) -> None:
    issued = tokens.issue_refresh(user_id=7, family_id=uuid.uuid4())
    head, body, signature = issued.token.split(".")
    # Change a character well inside the signature: the last ones carry padding bits, and
    # replacing them with what is already there would tamper with nothing.
    flipped = "B" if signature[10] == "A" else "A"
    tampered = f"{head}.{body}.{signature[:10]}{flipped}{signature[11:]}"
    with pytest.raises(UnauthenticatedError, match=r"^invalid refresh token$"):
        tokens.decode_refresh(tampered)


async def test_verify_access_reads_the_bearer_header(tokens: TokenService) -> None:
    token = tokens.issue_access(user_id=5, session_id="s")
    assert (await tokens.verify_access(f"Bearer {token}")).user_id == 5
    with pytest.raises(UnauthenticatedError, match=r"^unauthenticated$"):
        await tokens.verify_access(None)
    with pytest.raises(UnauthenticatedError, match=r"^invalid token$"):
        await tokens.verify_access(f"Token {token}")
