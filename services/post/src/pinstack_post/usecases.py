"""What the post service does: each method is one use case, writes in one transaction.

Ownership is decided here from the verified caller (:class:`Identity`), never from an author id
a caller asserts. Posts are cached without their author; authors come from
:class:`~pinstack_post.authors.AuthorDirectory` in one batch per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pinstack_common.db.database import Database
from pinstack_common.errors import NotFoundError
from pinstack_common.profiles import Profile
from pinstack_common.security.authorization import require_owner
from pinstack_common.security.tokens import Identity
from pinstack_common.validation import PAGE_LIMIT_MAX, positive_id
from pinstack_post.authors import AuthorDirectory
from pinstack_post.caching import PostCache
from pinstack_post.events import PostEvents
from pinstack_post.metrics import POSTS_CREATED
from pinstack_post.repository import MediaInput, PostFilter, PostRecord, PostRepository
from pinstack_post.validation import (
    validate_content,
    validate_media,
    validate_page,
    validate_range,
    validate_tag,
    validate_tags,
    validate_title,
)

__all__ = ["AuthoredPost", "PostChanges", "PostUseCases"]


@dataclass(frozen=True, slots=True)
class AuthoredPost:
    post: PostRecord
    author: Profile


@dataclass(frozen=True, slots=True)
class PostChanges:
    """An update: ``None`` keeps the old value; a value (an empty list too) replaces it."""

    title: str | None = None
    content: str | None = None
    tags: Sequence[str] | None = None
    media: Sequence[MediaInput] | None = None


@dataclass(kw_only=True, eq=False)
class PostUseCases:
    database: Database
    repository: PostRepository
    events: PostEvents
    authors: AuthorDirectory
    cache: PostCache
    default_limit: int = 20
    max_limit: int = PAGE_LIMIT_MAX

    async def create(
        self,
        *,
        caller: Identity,
        title: str,
        content: str = "",
        tags: Sequence[str] = (),
        media: Sequence[MediaInput] = (),
    ) -> AuthoredPost:
        validate_title(title)
        validate_content(content)
        tag_names = validate_tags(tags)
        items = validate_media(media)
        author = await self.authors.get(caller.user_id)
        if author is None:
            # A valid token of an account deleted since it was issued.
            raise NotFoundError("user not found")
        async with self.database.transaction() as session:
            post = await self.repository.insert(
                session,
                author_id=author.id,
                title=title,
                content=content,
                tag_names=tag_names,
                media_items=items,
            )
            await self.events.created(session, post)
        POSTS_CREATED.inc()
        return AuthoredPost(post=post, author=author)

    async def get(self, post_id: int) -> AuthoredPost:
        positive_id(post_id)
        post = await self.cache.get(post_id)
        if post is None:
            async with self.database.read() as session:
                post = await self.repository.get(session, post_id)
            if post is None:
                raise NotFoundError("post not found")
            await self.cache.put(post)
        author = await self.authors.get(post.author_id)
        if author is None:
            # The author is gone and their posts go with them (the deletion event may lag).
            raise NotFoundError("post not found")
        return AuthoredPost(post=post, author=author)

    async def list_posts(
        self, *, where: PostFilter, offset: int = 0, limit: int | None = None
    ) -> tuple[list[AuthoredPost], int]:
        """A page, newest first, and ``total`` matches: one statement (two for a page past the
        end) and at most one RPC."""
        limit = self.default_limit if limit is None else limit
        validate_page(offset=offset, limit=limit, max_limit=self.max_limit)
        if where.author_id is not None:
            positive_id(where.author_id)
        validate_range(where.created_after, where.created_before)
        if where.tag is not None:
            where = PostFilter(
                author_id=where.author_id,
                tag=validate_tag(where.tag),
                created_after=where.created_after,
                created_before=where.created_before,
            )
        async with self.database.read() as session:
            page, total = await self.repository.find(
                session, where=where, offset=offset, limit=limit
            )
        authors = await self.authors.get_many(post.author_id for post in page)
        shown = [
            AuthoredPost(post=post, author=authors[post.author_id])
            for post in page
            if post.author_id in authors
        ]
        # Posts of a deleted author are gone as far as readers are concerned, even before the
        # deletion event removed their rows: never fail the page, and do not count them.
        return shown, max(0, total - (len(page) - len(shown)))

    async def update(self, *, caller: Identity, post_id: int, changes: PostChanges) -> AuthoredPost:
        positive_id(post_id)
        values: dict[str, str] = {}
        if changes.title is not None:
            values["title"] = validate_title(changes.title)
        if changes.content is not None:
            values["content"] = validate_content(changes.content)
        tag_names = None if changes.tags is None else validate_tags(changes.tags)
        items = None if changes.media is None else validate_media(changes.media)
        async with self.database.transaction() as session:
            existing = await self.repository.get(session, post_id, for_update=True)
            _require_author(existing, caller)
            post = await self.repository.update(
                session, post_id, values=values, tag_names=tag_names, media_items=items
            )
            await self.events.updated(session, post)
        await self.cache.forget(post_id)
        author = await self.authors.get(post.author_id)
        if author is None:
            raise NotFoundError("post not found")
        return AuthoredPost(post=post, author=author)

    async def delete(self, *, caller: Identity, post_id: int) -> None:
        positive_id(post_id)
        async with self.database.transaction() as session:
            existing = await self.repository.get(session, post_id, for_update=True)
            post = _require_author(existing, caller)
            await self.repository.delete(session, post_id)
            await self.events.deleted(session, post_id=post_id, author_id=post.author_id)
        await self.cache.forget(post_id)

    async def delete_posts_of_author(
        self, user_id: int, session: AsyncSession | None = None
    ) -> int:
        """Remove every post of a deleted user; idempotent. Wired to ``UserDeleted``.

        Runs in ``session`` when given (the event consumer's transaction, which also records the
        event as processed). Returns how many posts went; each is announced as ``PostDeleted``.
        """
        if session is None:
            async with self.database.transaction() as own:
                return await self.delete_posts_of_author(user_id, session=own)
        post_ids = await self.repository.delete_by_author(session, user_id)
        for post_id in post_ids:
            await self.events.deleted(session, post_id=post_id, author_id=user_id)
        if post_ids:
            await self.cache.forget(*post_ids)
        await self.authors.forget(user_id)
        return len(post_ids)

    async def refresh_author(self, user_id: int) -> None:
        """Forget the cached author summary, so posts show the new profile. Wired to
        ``UserUpdated``; posts are cached without their author, so one key is enough."""
        await self.authors.forget(user_id)


def _require_author(post: PostRecord | None, caller: Identity) -> PostRecord:
    if post is None:
        raise NotFoundError("post not found")
    require_owner(caller, post.author_id)
    return post
