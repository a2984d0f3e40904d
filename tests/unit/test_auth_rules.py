"""Rotation decisions and Argon2id hashing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pinstack_auth.passwords import PasswordHasher
from pinstack_auth.repository import StoredRefreshToken
from pinstack_auth.usecases import RefreshDecision, decide_refresh

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _stored(
    *, used: bool = False, revoked: bool = False, expires_in: timedelta = timedelta(days=1)
) -> StoredRefreshToken:
    return StoredRefreshToken(
        token_hash="h",
        family_id=uuid.uuid4(),
        user_id=1,
        expires_at=NOW + expires_in,
        used_at=NOW - timedelta(minutes=1) if used else None,
        family_revoked_at=NOW - timedelta(minutes=1) if revoked else None,
    )


def test_fresh_token_rotates() -> None:
    assert decide_refresh(_stored(), now=NOW) is RefreshDecision.ROTATE


def test_used_token_is_reuse() -> None:
    assert decide_refresh(_stored(used=True), now=NOW) is RefreshDecision.REUSE


def test_used_token_of_revoked_family_is_just_rejected() -> None:
    assert decide_refresh(_stored(used=True, revoked=True), now=NOW) is RefreshDecision.REJECT


def test_unknown_revoked_and_expired_are_rejected() -> None:
    assert decide_refresh(None, now=NOW) is RefreshDecision.REJECT
    assert decide_refresh(_stored(revoked=True), now=NOW) is RefreshDecision.REJECT
    assert decide_refresh(_stored(expires_in=timedelta(0)), now=NOW) is RefreshDecision.REJECT


async def test_argon2id_hash_and_verify() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost_kib=8, parallelism=1)
    stored = await hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert (await hasher.verify(stored, "correct horse")).matches
    assert not (await hasher.verify(stored, "wrong horse!")).matches
    assert not (await hasher.verify("not-a-hash", "correct horse")).matches


async def test_stronger_settings_ask_for_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost_kib=8, parallelism=1)
    strong = PasswordHasher(time_cost=2, memory_cost_kib=16, parallelism=1)
    result = await strong.verify(await weak.hash("password1"), "password1")
    assert result.matches
    assert result.needs_rehash
