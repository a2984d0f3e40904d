"""SQL of the auth database. Every function runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_auth.models import credentials, refresh_families, refresh_tokens

__all__ = ["AuthRepository", "StoredRefreshToken"]


@dataclass(frozen=True, slots=True)
class StoredRefreshToken:
    token_hash: str
    family_id: uuid.UUID
    user_id: int
    expires_at: datetime
    used_at: datetime | None
    family_revoked_at: datetime | None


class AuthRepository:
    """Stateless; a class so that use cases receive it as one collaborator."""

    # -- credentials ---------------------------------------------------------------------------

    async def add_credentials(
        self, session: AsyncSession, *, user_id: int, password_hash: str
    ) -> None:
        await session.execute(
            credentials.insert().values(user_id=user_id, password_hash=password_hash)
        )

    async def password_hash(self, session: AsyncSession, *, user_id: int) -> str | None:
        value = await session.scalar(
            select(credentials.c.password_hash).where(credentials.c.user_id == user_id)
        )
        return None if value is None else str(value)

    async def set_password_hash(
        self, session: AsyncSession, *, user_id: int, password_hash: str
    ) -> bool:
        result = await session.execute(
            update(credentials)
            .where(credentials.c.user_id == user_id)
            .values(password_hash=password_hash, updated_at=func.now())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete_credentials(self, session: AsyncSession, *, user_id: int) -> None:
        await session.execute(delete(credentials).where(credentials.c.user_id == user_id))

    # -- refresh-token families ----------------------------------------------------------------

    async def add_family(
        self, session: AsyncSession, *, family_id: uuid.UUID, user_id: int, now: datetime
    ) -> None:
        await session.execute(
            refresh_families.insert().values(id=family_id, user_id=user_id, created_at=now)
        )

    async def add_token(
        self,
        session: AsyncSession,
        *,
        token_hash: str,
        family_id: uuid.UUID,
        issued_at: datetime,
        expires_at: datetime,
    ) -> None:
        await session.execute(
            refresh_tokens.insert().values(
                token_hash=token_hash,
                family_id=family_id,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )

    async def lock_token(
        self, session: AsyncSession, *, token_hash: str
    ) -> StoredRefreshToken | None:
        """The token and its family, locked: concurrent presentations of one token serialise,
        so exactly one of them rotates and the others count as reuse."""
        row = (
            await session.execute(
                select(
                    refresh_tokens.c.token_hash,
                    refresh_tokens.c.family_id,
                    refresh_families.c.user_id,
                    refresh_tokens.c.expires_at,
                    refresh_tokens.c.used_at,
                    refresh_families.c.revoked_at,
                )
                .join(refresh_families, refresh_families.c.id == refresh_tokens.c.family_id)
                .where(refresh_tokens.c.token_hash == token_hash)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        return StoredRefreshToken(
            token_hash=row.token_hash,
            family_id=row.family_id,
            user_id=row.user_id,
            expires_at=row.expires_at,
            used_at=row.used_at,
            family_revoked_at=row.revoked_at,
        )

    async def mark_used(self, session: AsyncSession, *, token_hash: str, now: datetime) -> None:
        await session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash)
            .values(used_at=now)
        )

    async def revoke_family(
        self, session: AsyncSession, *, family_id: uuid.UUID, now: datetime
    ) -> None:
        await session.execute(
            update(refresh_families)
            .where(refresh_families.c.id == family_id, refresh_families.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_user_families(
        self, session: AsyncSession, *, user_id: int, now: datetime
    ) -> list[uuid.UUID]:
        """End every open session of the user; their ids (each one's tokens get refused)."""
        result = await session.execute(
            update(refresh_families)
            .where(refresh_families.c.user_id == user_id, refresh_families.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(refresh_families.c.id)
        )
        return list(result.scalars())

    async def delete_user_families(self, session: AsyncSession, *, user_id: int) -> None:
        # Tokens go with their family (ON DELETE CASCADE).
        await session.execute(delete(refresh_families).where(refresh_families.c.user_id == user_id))

    async def purge_families(self, session: AsyncSession, *, now: datetime) -> int:
        """Delete sessions that can no longer answer anything but ``invalid refresh token``:
        revoked ones, and those whose every token has expired. An unknown token gets that same
        answer, so nothing observable changes; the tables just stop growing."""
        live_token = exists().where(
            refresh_tokens.c.family_id == refresh_families.c.id,
            refresh_tokens.c.expires_at > now,
        )
        result = await session.execute(
            delete(refresh_families).where(
                or_(refresh_families.c.revoked_at.is_not(None), ~live_token)
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
