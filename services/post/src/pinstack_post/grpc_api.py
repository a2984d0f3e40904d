"""The PostService servicer: parse the request, call one use case, map the result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pinstack.post.v1 import post_pb2, post_pb2_grpc
from pinstack_common.profiles import profile_scalars
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_common.timestamps import from_timestamp, to_timestamp
from pinstack_post.repository import MediaInput, PostFilter
from pinstack_post.usecases import AuthoredPost, PostChanges, PostUseCases

__all__ = ["PostServicer", "to_proto"]


def _media(items: Iterable[post_pb2.MediaInput]) -> list[MediaInput]:
    return [MediaInput(url=item.url, type=item.type, position=item.position) for item in items]


def to_proto(authored: AuthoredPost) -> post_pb2.Post:
    post = authored.post
    return post_pb2.Post(
        id=post.id,
        author=post_pb2.Author(**profile_scalars(authored.author)),
        title=post.title,
        content=post.content,
        created_at=to_timestamp(post.created_at),
        updated_at=to_timestamp(post.updated_at),
        media=[
            post_pb2.MediaItem(id=m.id, url=m.url, type=m.type, position=m.position)
            for m in post.media
        ],
        tags=[post_pb2.Tag(id=t.id, name=t.name) for t in post.tags],
    )


@dataclass(kw_only=True, eq=False)
class PostServicer(post_pb2_grpc.PostServiceServicer):
    posts: PostUseCases
    verifier: AccessTokenVerifier

    async def CreatePost(
        self, request: post_pb2.CreatePostRequest, context: object
    ) -> post_pb2.Post:
        created = await self.posts.create(
            caller=await self.verifier.verify_caller(),
            title=request.title,
            content=request.content,
            tags=list(request.tags),
            media=_media(request.media),
        )
        return to_proto(created)

    async def GetPost(self, request: post_pb2.GetPostRequest, context: object) -> post_pb2.Post:
        return to_proto(await self.posts.get(request.id))

    async def ListPosts(
        self, request: post_pb2.ListPostsRequest, context: object
    ) -> post_pb2.ListPostsResponse:
        where = PostFilter(
            author_id=request.author_id if request.HasField("author_id") else None,
            tag=request.tag if request.HasField("tag") else None,
            created_after=(
                from_timestamp(request.created_after) if request.HasField("created_after") else None
            ),
            created_before=(
                from_timestamp(request.created_before)
                if request.HasField("created_before")
                else None
            ),
        )
        page, total = await self.posts.list_posts(
            where=where, offset=request.offset, limit=request.limit or None
        )
        return post_pb2.ListPostsResponse(posts=[to_proto(item) for item in page], total=total)

    async def UpdatePost(
        self, request: post_pb2.UpdatePostRequest, context: object
    ) -> post_pb2.Post:
        changes = PostChanges(
            title=request.title if request.HasField("title") else None,
            content=request.content if request.HasField("content") else None,
            tags=list(request.tags.values) if request.HasField("tags") else None,
            media=_media(request.media.items) if request.HasField("media") else None,
        )
        updated = await self.posts.update(
            caller=await self.verifier.verify_caller(), post_id=request.id, changes=changes
        )
        return to_proto(updated)

    async def DeletePost(
        self, request: post_pb2.DeletePostRequest, context: object
    ) -> post_pb2.DeletePostResponse:
        await self.posts.delete(caller=await self.verifier.verify_caller(), post_id=request.id)
        return post_pb2.DeletePostResponse()
