"""The UserService servicer: parse the request, call one use case, map the result."""

from __future__ import annotations

from dataclasses import dataclass

from pinstack.user.v1 import user_pb2, user_pb2_grpc
from pinstack_common.profiles import profile_to_proto
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_user.usecases import UserUseCases

__all__ = ["UserServicer"]


@dataclass(kw_only=True, eq=False)
class UserServicer(user_pb2_grpc.UserServiceServicer):
    users: UserUseCases
    verifier: AccessTokenVerifier

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: object
    ) -> user_pb2.User:
        user = await self.users.create(
            username=request.username,
            email=request.email,
            full_name=request.full_name,
            bio=request.bio,
            avatar_url=request.avatar_url,
        )
        return profile_to_proto(user)

    async def GetUser(self, request: user_pb2.GetUserRequest, context: object) -> user_pb2.User:
        return profile_to_proto(await self.users.get(request.id))

    async def GetUserByUsername(
        self, request: user_pb2.GetUserByUsernameRequest, context: object
    ) -> user_pb2.User:
        return profile_to_proto(await self.users.get_by_username(request.username))

    async def GetUserByEmail(
        self, request: user_pb2.GetUserByEmailRequest, context: object
    ) -> user_pb2.User:
        return profile_to_proto(await self.users.get_by_email(request.email))

    async def GetUsers(
        self, request: user_pb2.GetUsersRequest, context: object
    ) -> user_pb2.GetUsersResponse:
        users = await self.users.get_many(list(request.ids))
        return user_pb2.GetUsersResponse(users=[profile_to_proto(user) for user in users])

    async def SearchUsers(
        self, request: user_pb2.SearchUsersRequest, context: object
    ) -> user_pb2.SearchUsersResponse:
        users, total = await self.users.search(
            query=request.query, page=request.page or 1, limit=request.limit or 10
        )
        return user_pb2.SearchUsersResponse(
            users=[profile_to_proto(user) for user in users], total=total
        )

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: object
    ) -> user_pb2.User:
        changes = {
            field: getattr(request, field)
            for field in ("username", "email", "full_name", "bio")
            if request.HasField(field)
        }
        user = await self.users.update(
            caller=await self.verifier.verify_caller(), user_id=request.id, changes=changes
        )
        return profile_to_proto(user)

    async def UpdateAvatar(
        self, request: user_pb2.UpdateAvatarRequest, context: object
    ) -> user_pb2.User:
        user = await self.users.update_avatar(
            caller=await self.verifier.verify_caller(),
            user_id=request.id,
            avatar_url=request.avatar_url,
        )
        return profile_to_proto(user)

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: object
    ) -> user_pb2.DeleteUserResponse:
        await self.users.delete(caller=await self.verifier.verify_caller(), user_id=request.id)
        return user_pb2.DeleteUserResponse()
