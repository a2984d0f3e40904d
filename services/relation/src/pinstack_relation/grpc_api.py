"""The RelationService servicer: parse the request, call one use case, map the result."""

from __future__ import annotations

from pinstack.relation.v1 import relation_pb2, relation_pb2_grpc
from pinstack_common.context import caller_authorization
from pinstack_common.tokens import AccessTokenVerifier, Identity
from pinstack_relation.clients import RelatedUser
from pinstack_relation.usecases import RelationUseCases

__all__ = ["RelationServicer"]

DEFAULT_LIMIT = 20


def _listing(users: list[RelatedUser], total: int) -> relation_pb2.ListRelationsResponse:
    return relation_pb2.ListRelationsResponse(
        users=[
            relation_pb2.RelatedUser(id=u.id, username=u.username, avatar_url=u.avatar_url)
            for u in users
        ],
        total=total,
    )


class RelationServicer(relation_pb2_grpc.RelationServiceServicer):
    def __init__(self, *, relations: RelationUseCases, verifier: AccessTokenVerifier) -> None:
        self._relations = relations
        self._verifier = verifier

    async def _caller(self) -> Identity:
        # The follower is whoever the forwarded token proves, never an id in the request.
        return await self._verifier.verify_header(caller_authorization.get())

    async def Follow(
        self, request: relation_pb2.FollowRequest, context: object
    ) -> relation_pb2.FollowResponse:
        await self._relations.follow(caller=await self._caller(), followee_id=request.followee_id)
        return relation_pb2.FollowResponse()

    async def Unfollow(
        self, request: relation_pb2.UnfollowRequest, context: object
    ) -> relation_pb2.UnfollowResponse:
        await self._relations.unfollow(caller=await self._caller(), followee_id=request.followee_id)
        return relation_pb2.UnfollowResponse()

    async def GetFollowers(
        self, request: relation_pb2.ListRelationsRequest, context: object
    ) -> relation_pb2.ListRelationsResponse:
        users, total = await self._relations.followers(
            user_id=request.user_id, page=request.page or 1, limit=request.limit or DEFAULT_LIMIT
        )
        return _listing(users, total)

    async def GetFollowees(
        self, request: relation_pb2.ListRelationsRequest, context: object
    ) -> relation_pb2.ListRelationsResponse:
        users, total = await self._relations.followees(
            user_id=request.user_id, page=request.page or 1, limit=request.limit or DEFAULT_LIMIT
        )
        return _listing(users, total)
