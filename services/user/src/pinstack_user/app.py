"""Composition root of the user service: builds every collaborator and owns their lifecycle."""

from __future__ import annotations

from functools import partial

from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.events import EventTransport, Outbox
from pinstack_common.runtime import ServiceComponent, ServiceRuntime
from pinstack_user.events import UserEvents
from pinstack_user.grpc_api import UserServicer
from pinstack_user.models import outbox
from pinstack_user.repository import UserRepository
from pinstack_user.settings import UserSettings
from pinstack_user.usecases import UserUseCases

__all__ = ["MIGRATIONS_PACKAGE", "UserComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_user"


class UserComponent(ServiceComponent):
    name = "user"
    settings: UserSettings
    use_cases: UserUseCases | None = None

    async def wire(self, runtime: ServiceRuntime) -> None:
        database = runtime.database()
        user_outbox = Outbox(table=outbox)
        await runtime.relay(database=database, outbox=user_outbox)
        self.use_cases = UserUseCases(
            database=database,
            repository=UserRepository(),
            events=UserEvents(outbox=user_outbox),
            max_page=self.settings.search_max_limit,
        )
        servicer = UserServicer(users=self.use_cases, verifier=runtime.token_verifier())
        await runtime.serve(
            service_name="pinstack.user.v1.UserService",
            registration=partial(user_pb2_grpc.add_UserServiceServicer_to_server, servicer),
        )


def create_component(
    settings: UserSettings | None = None, *, transport: EventTransport | None = None
) -> UserComponent:
    return UserComponent(settings=settings or UserSettings(), transport=transport)
