"""The RelationService servicer: parse the request, call one use case, map the result."""

from __future__ import annotations

from dataclasses import dataclass

from pinstack.relation.v1 import relation_pb2, relation_pb2_grpc
from pinstack_common.profiles import Profile
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_relation.usecases import RelationUseCases

__all__ = ["RelationServicer"]

DEFAULT_LIMIT = 20


def _listing(users: list[Profile], total: int) -> relation_pb2.ListRelationsResponse:
    return relation_pb2.ListRelationsResponse(
        users=[
            relation_pb2.RelatedUser(id=u.id, username=u.username, avatar_url=u.avatar_url)
            for u in users
        ],
        total=total,
    )


@dataclass(kw_only=True, eq=False)
class RelationServicer(relation_pb2_grpc.RelationServiceServicer):
    relations: RelationUseCases
    verifier: AccessTokenVerifier

    async def Follow(
        self, request: relation_pb2.FollowRequest, context: object
    ) -> relation_pb2.FollowResponse:
        await self.relations.follow(
            caller=await self.verifier.verify_caller(), followee_id=request.followee_id
        )
        return relation_pb2.FollowResponse()

    async def Unfollow(
        self, request: relation_pb2.UnfollowRequest, context: object
    ) -> relation_pb2.UnfollowResponse:
        await self.relations.unfollow(
            caller=await self.verifier.verify_caller(), followee_id=request.followee_id
        )
        return relation_pb2.UnfollowResponse()

    async def GetFollowers(
        self, request: relation_pb2.ListRelationsRequest, context: object
    ) -> relation_pb2.ListRelationsResponse:
        users, total = await self.relations.followers(
            user_id=request.user_id, page=request.page or 1, limit=request.limit or DEFAULT_LIMIT
        )
        return _listing(users, total)

    async def GetFollowees(
        self, request: relation_pb2.ListRelationsRequest, context: object
    ) -> relation_pb2.ListRelationsResponse:
        users, total = await self.relations.followees(
            user_id=request.user_id, page=request.page or 1, limit=request.limit or DEFAULT_LIMIT
        )
        return _listing(users, total)
