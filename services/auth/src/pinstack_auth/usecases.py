"""What the auth service does: accounts, sessions, passwords. One method per RPC (and events).

Order of operations is chosen so that a failure never leaves a half-made account that can't be
repaired: the password is hashed before the profile exists, and the credentials row is written
after it; if that write fails, the profile is deleted again (compensation).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_auth.errors import invalid_credentials, invalid_refresh_token
from pinstack_auth.metrics import LOGINS, REGISTRATIONS
from pinstack_auth.passwords import PasswordHasher
from pinstack_auth.ratelimit import LoginLimiter
from pinstack_auth.repository import AuthRepository, StoredRefreshToken
from pinstack_auth.revocations import Revoker
from pinstack_auth.tokens import TokenService, hash_token
from pinstack_common.context import caller_authorization
from pinstack_common.db.database import Database
from pinstack_common.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from pinstack_common.profiles import Profile
from pinstack_common.security.revocation import AuthorityAnswer
from pinstack_common.usernames import canonical_username
from pinstack_common.validation import (
    PASSWORD_MAX,
    VALIDATION_FAILED,
    validate_avatar_url,
    validate_email,
    validate_password,
    validate_username,
)

__all__ = [
    "AuthUseCases",
    "NewAccount",
    "RefreshDecision",
    "TokenPair",
    "UserDirectory",
    "decide_refresh",
]

log = structlog.get_logger(__name__)

_LOGIN_MAX = 320  # the longest email the user service accepts; anything longer matches no one


class UserDirectory(Protocol):
    async def create_user(
        self, *, username: str, email: str, full_name: str, bio: str, avatar_url: str
    ) -> Profile: ...

    async def find_by_login(self, login: str) -> Profile: ...

    async def delete_user(self, user_id: int, *, authorization: str) -> None: ...


@dataclass(frozen=True, slots=True)
class NewAccount:
    username: str
    email: str
    password: str
    full_name: str = ""
    bio: str = ""
    avatar_url: str = ""

    def validate(self) -> None:
        validate_username(self.username)
        validate_email(self.email)
        validate_password(self.password)
        if self.avatar_url:
            validate_avatar_url(self.avatar_url)

    def __repr__(self) -> str:  # never let a password reach a log line through a repr
        return f"NewAccount(username={self.username!r}, email={self.email!r})"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    user_id: int


class RefreshDecision(enum.Enum):
    ROTATE = "rotate"  # valid and unused: consume it, issue the next one in the family
    REUSE = "reuse"  # already rotated: someone replays it, so the whole family is revoked
    REJECT = "reject"  # unknown, expired, or its session already ended


def decide_refresh(stored: StoredRefreshToken | None, *, now: datetime) -> RefreshDecision:
    if stored is None or stored.family_revoked_at is not None:
        return RefreshDecision.REJECT
    if stored.used_at is not None:
        return RefreshDecision.REUSE
    if stored.expires_at <= now:
        return RefreshDecision.REJECT
    return RefreshDecision.ROTATE


@dataclass(kw_only=True, eq=False)
class AuthUseCases:
    database: Database
    repository: AuthRepository
    users: UserDirectory
    passwords: PasswordHasher
    tokens: TokenService
    limiter: LoginLimiter
    revocations: Revoker
    # Registrations in flight, see _claim.
    _claims: dict[str, asyncio.Event] = field(default_factory=dict, init=False)

    # -- accounts ------------------------------------------------------------------------------

    async def register(self, account: NewAccount) -> TokenPair:
        """Create the profile and credentials and start a session (registration logs in)."""
        user, pair = await self._create(account, start_session=True)
        assert pair is not None
        log.info("user registered", user_id=user.id)
        return pair

    async def create_account(self, account: NewAccount) -> Profile:
        """An account that can log in, without a session (``POST /users``)."""
        user, _ = await self._create(account, start_session=False)
        log.info("account created", user_id=user.id)
        return user

    async def _create(
        self, account: NewAccount, *, start_session: bool
    ) -> tuple[Profile, TokenPair | None]:
        account.validate()
        async with self._claim(account):
            # Uniqueness before the expensive hash: a burst of duplicates must get its 409s
            # rather than queue for Argon2. The user service's create stays the authority.
            await self._ensure_free(account)
            return await self._create_claimed(account, start_session=start_session)

    @contextlib.asynccontextmanager
    async def _claim(self, account: NewAccount) -> AsyncIterator[None]:
        """One registration per username and per email at a time in this process: the others
        wait for it (not for a hashing slot) and then find the name taken."""
        keys = {
            f"username:{canonical_username(account.username)}",  # the user service's key
            f"email:{account.email.lower()}",
        }
        while busy := [self._claims[key] for key in keys if key in self._claims]:
            await busy[0].wait()
        done = asyncio.Event()
        for key in keys:
            self._claims[key] = done
        try:
            yield
        finally:
            for key in keys:
                del self._claims[key]
            done.set()

    async def _ensure_free(self, account: NewAccount) -> None:
        taken = (
            (account.username, "username already exists"),
            (account.email, "email already exists"),
        )
        for login, message in taken:
            try:
                await self.users.find_by_login(login)
            except NotFoundError:
                continue
            raise AlreadyExistsError(message)

    async def _create_claimed(
        self, account: NewAccount, *, start_session: bool
    ) -> tuple[Profile, TokenPair | None]:
        password_hash = await self.passwords.hash(account.password)
        user = await self.users.create_user(
            username=account.username,
            email=account.email,
            full_name=account.full_name,
            bio=account.bio,
            avatar_url=account.avatar_url,
        )
        try:
            async with self.database.transaction() as session:
                await self.repository.add_credentials(
                    session, user_id=user.id, password_hash=password_hash
                )
                pair = await self._start_session(session, user.id) if start_session else None
        except BaseException:
            # Also on cancellation: a profile nobody can log in to must not stay behind.
            await asyncio.shield(self._compensate(user.id))
            raise
        REGISTRATIONS.inc()
        return user, pair

    async def _compensate(self, user_id: int) -> None:
        try:
            # Auth is the identity authority: it acts as the new user to delete the profile.
            bearer = self.tokens.issue_access(user_id=user_id, session_id="compensation")
            await self.users.delete_user(user_id, authorization=f"Bearer {bearer}")
            log.warning("registration rolled back", user_id=user_id)
        except Exception:
            log.exception("registration rollback failed; orphan profile", user_id=user_id)

    async def forget_user(self, user_id: int, session: AsyncSession | None = None) -> None:
        """Remove everything auth holds about a deleted user (idempotent: events redeliver).

        Pass ``session`` to run inside the event consumer's transaction, so the deletion and the
        record that the event was handled commit together.
        """
        if session is None:
            async with self.database.transaction() as own:
                await self._forget(own, user_id)
        else:
            await self._forget(session, user_id)
        log.info("auth data of user removed", user_id=user_id)

    async def _forget(self, session: AsyncSession, user_id: int) -> None:
        await self.repository.delete_credentials(session, user_id=user_id)
        await self.repository.delete_user_families(session, user_id=user_id)
        at = int(self.tokens.now().timestamp()) + 1
        await self.revocations.revoke_user(session, user_id, at=at)

    # -- sessions ------------------------------------------------------------------------------

    async def login(self, *, login: str, password: str, client_address: str) -> TokenPair:
        if not login or len(login) > _LOGIN_MAX:
            raise InvalidArgumentError(VALIDATION_FAILED)
        validate_password(password)
        address = client_address or "unknown"
        await self.limiter.check_address(address=address)
        try:
            user = await self.users.find_by_login(login)
        except NotFoundError:
            await self.passwords.verify_dummy(password)  # as slow as a wrong password
            await self.limiter.failed(address=address)
            LOGINS.labels("unknown_user").inc()
            raise
        account = str(user.id)
        # Counted before the check (atomically): parallel guesses cannot overshoot the limit.
        await self.limiter.attempt(address=address, account=account)
        if not await self._password_matches(user.id, password):
            await self.limiter.failed(address=address)
            LOGINS.labels("invalid_credentials").inc()
            raise invalid_credentials()
        await self.limiter.succeeded(address=address, account=account)
        async with self.database.transaction() as session:
            pair = await self._start_session(session, user.id)
        LOGINS.labels("success").inc()
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: consume the presented token and issue the next pair of its family."""
        if not refresh_token:
            raise InvalidArgumentError(VALIDATION_FAILED)
        self.tokens.decode_refresh(refresh_token)
        now = self.tokens.now()
        async with self.database.transaction() as session:
            stored = await self.repository.lock_token(session, token_hash=hash_token(refresh_token))
            decision = decide_refresh(stored, now=now)
            pair: TokenPair | None = None
            if stored is not None and decision is RefreshDecision.ROTATE:
                await self.repository.mark_used(session, token_hash=stored.token_hash, now=now)
                pair = await self._issue_pair(session, stored.user_id, stored.family_id)
            elif stored is not None and decision is RefreshDecision.REUSE:
                await self.repository.revoke_family(session, family_id=stored.family_id, now=now)
                await self.revocations.revoke_session(session, str(stored.family_id))
        # Raised after the commit: the revocation of a reused family must persist.
        if pair is None:
            if stored is not None and decision is RefreshDecision.REUSE:
                log.warning(
                    "refresh token reused; session revoked",
                    user_id=stored.user_id,
                    session_id=str(stored.family_id),
                )
            raise invalid_refresh_token()
        return pair

    async def logout(self, refresh_token: str) -> None:
        """End the session the token belongs to."""
        if not refresh_token:
            raise InvalidArgumentError(VALIDATION_FAILED)
        self.tokens.decode_refresh(refresh_token)
        now = self.tokens.now()
        async with self.database.transaction() as session:
            stored = await self.repository.lock_token(session, token_hash=hash_token(refresh_token))
            decision = decide_refresh(stored, now=now)
            if stored is not None and decision is not RefreshDecision.REJECT:
                # A rotated token ending its session is reuse: revoking is right either way.
                await self.repository.revoke_family(session, family_id=stored.family_id, now=now)
                await self.revocations.revoke_session(session, str(stored.family_id))
        if decision is not RefreshDecision.ROTATE:
            raise invalid_refresh_token()

    async def update_password(self, *, old_password: str, new_password: str) -> None:
        """Change the caller's password and end every session of theirs."""
        identity = await self.tokens.verify_access(caller_authorization.get())
        if not old_password or len(old_password) > PASSWORD_MAX:
            raise InvalidArgumentError(VALIDATION_FAILED)
        validate_password(new_password)
        account = str(identity.user_id)
        # Guessing the old password with a stolen access token is rate-limited like a login.
        await self.limiter.attempt(address=f"user:{account}", account=account)
        if not await self._password_matches(identity.user_id, old_password, rehash=False):
            raise invalid_credentials()
        await self.limiter.succeeded(address=f"user:{account}", account=account)
        new_hash = await self.passwords.hash(new_password)
        async with self.database.transaction() as session:
            if not await self.repository.set_password_hash(
                session, user_id=identity.user_id, password_hash=new_hash
            ):
                raise invalid_credentials()
            now = self.tokens.now()
            revoked = await self.repository.revoke_user_families(
                session, user_id=identity.user_id, now=now
            )
            # Each session by id: the cut-off alone, in whole seconds, spares a token issued in
            # the second of the change.
            await self.revocations.revoke_user(
                session, identity.user_id, at=int(now.timestamp()), sessions=revoked
            )
        log.info("password updated", user_id=identity.user_id, sessions_revoked=len(revoked))

    async def purge_sessions(self) -> int:
        """Housekeeping: drop ended sessions (run periodically by the component)."""
        async with self.database.transaction() as session:
            await self.revocations.purge(session)
            return await self.repository.purge_families(session, now=self.tokens.now())

    async def check_session(
        self, *, session_id: str, user_id: int, issued_at: int
    ) -> AuthorityAnswer:
        """Whether a verified token's session ended, from the database (``CheckSession``)."""
        return await self.revocations.check(
            session_id=session_id, user_id=user_id, issued_at=issued_at
        )

    def jwks(self) -> str:
        return self.tokens.keys.jwks_json()

    # -- helpers -------------------------------------------------------------------------------

    async def _password_matches(self, user_id: int, password: str, *, rehash: bool = True) -> bool:
        async with self.database.read() as session:
            stored = await self.repository.password_hash(session, user_id=user_id)
        if stored is None:  # a profile without credentials (e.g. a failed rollback)
            await self.passwords.verify_dummy(password)
            return False
        result = await self.passwords.verify(stored, password)
        if result.matches and result.needs_rehash and rehash:
            upgraded = await self.passwords.hash(password)
            async with self.database.transaction() as session:
                await self.repository.set_password_hash(
                    session, user_id=user_id, password_hash=upgraded
                )
        return result.matches

    async def _start_session(self, session: AsyncSession, user_id: int) -> TokenPair:
        family_id = uuid.uuid4()
        await self.repository.add_family(
            session, family_id=family_id, user_id=user_id, now=self.tokens.now()
        )
        return await self._issue_pair(session, user_id, family_id)

    async def _issue_pair(
        self, session: AsyncSession, user_id: int, family_id: uuid.UUID
    ) -> TokenPair:
        refresh = self.tokens.issue_refresh(user_id=user_id, family_id=family_id)
        await self.repository.add_token(
            session,
            token_hash=refresh.token_hash,
            family_id=family_id,
            issued_at=refresh.issued_at,
            expires_at=refresh.expires_at,
        )
        access = self.tokens.issue_access(user_id=user_id, session_id=str(family_id))
        return TokenPair(access_token=access, refresh_token=refresh.token, user_id=user_id)
