"""Rotation decisions, the gRPC error adapter, and Argon2id hashing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from pinstack_auth.clients import domain_error
from pinstack_auth.errors import UpstreamTimeoutError
from pinstack_auth.passwords import PasswordHasher
from pinstack_auth.repository import StoredRefreshToken
from pinstack_auth.usecases import RefreshDecision, decide_refresh
from pinstack_common.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)

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


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (grpc.StatusCode.ALREADY_EXISTS, "username already exists", AlreadyExistsError),
        (grpc.StatusCode.ALREADY_EXISTS, "email already exists", AlreadyExistsError),
        (grpc.StatusCode.NOT_FOUND, "user not found", NotFoundError),
        (grpc.StatusCode.INVALID_ARGUMENT, "validation failed", InvalidArgumentError),
    ],
)
def test_domain_errors_keep_the_contract_message(
    code: grpc.StatusCode, details: str, kind: type[Exception]
) -> None:
    error = domain_error(_rpc_error(code, details))
    assert isinstance(error, kind)
    assert str(error) == details


def test_outages_become_outage_errors() -> None:
    unavailable = domain_error(_rpc_error(grpc.StatusCode.UNAVAILABLE, "connect failed"))
    assert isinstance(unavailable, UnavailableError)
    assert str(unavailable) == "external service unavailable"
    timeout = domain_error(_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"))
    assert isinstance(timeout, UpstreamTimeoutError)
    assert str(timeout) == "external service timeout"


def test_bugs_stay_rpc_errors() -> None:
    original = _rpc_error(grpc.StatusCode.INTERNAL, "internal error")
    assert domain_error(original) is original


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
