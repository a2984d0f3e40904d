"""Composition root of the user service: builds every collaborator and owns their lifecycle."""

from __future__ import annotations

from functools import partial

import grpc

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.db import Database
from pinstack_common.events import EventTransport, Outbox, OutboxRelay
from pinstack_common.events.wiring import TransportHandle, open_transport
from pinstack_common.grpc_client import open_channel
from pinstack_common.grpc_server import GrpcServer
from pinstack_common.tokens import AccessTokenVerifier
from pinstack_user.events import UserEvents
from pinstack_user.grpc_api import UserServicer
from pinstack_user.models import outbox
from pinstack_user.repository import UserRepository
from pinstack_user.settings import UserSettings
from pinstack_user.usecases import UserUseCases

__all__ = ["MIGRATIONS_PACKAGE", "UserComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_user"


class UserComponent:
    name = "user"

    def __init__(self, *, settings: UserSettings, transport: EventTransport | None = None) -> None:
        self._settings = settings
        self._shared_transport = transport
        self._events: TransportHandle | None = None
        self._relay: OutboxRelay | None = None
        self.database: Database | None = None
        self._auth_channel: grpc.aio.Channel | None = None
        self._server: GrpcServer | None = None
        self.use_cases: UserUseCases | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("user service is not started")
        return self._server.address

    async def start(self) -> None:
        settings = self._settings
        token = settings.internal_token.get_secret_value()
        self.database = Database(
            url=settings.database_url, component=self.name, pool_size=settings.db_pool_size
        )
        self._auth_channel = open_channel(
            address=settings.auth_addr,
            service="auth",
            internal_token=token,
            timeout=settings.rpc_timeout_seconds,
        )
        auth = auth_pb2_grpc.AuthServiceStub(self._auth_channel)

        async def jwks() -> str:
            return str((await auth.GetJwks(auth_pb2.GetJwksRequest())).jwks_json)

        self._events = open_transport(settings, client_id=self.name, shared=self._shared_transport)
        await self._events.start()
        user_outbox = Outbox(table=outbox)
        self._relay = OutboxRelay(
            database=self.database,
            outbox=user_outbox,
            transport=self._events.transport,
            component=self.name,
        )
        await self._relay.start()
        self.use_cases = UserUseCases(
            database=self.database,
            repository=UserRepository(),
            events=UserEvents(outbox=user_outbox),
            max_page=settings.search_max_limit,
        )
        servicer = UserServicer(
            users=self.use_cases, verifier=AccessTokenVerifier(jwks_source=jwks)
        )
        self._server = GrpcServer(
            component=self.name,
            service_names=["pinstack.user.v1.UserService"],
            registrations=[partial(user_pb2_grpc.add_UserServiceServicer_to_server, servicer)],
            host=settings.grpc_host,
            port=settings.grpc_port,
            internal_token=token,
        )
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self._events is not None:
            await self._events.stop()
        if self._auth_channel is not None:
            await self._auth_channel.close()
        if self.database is not None:
            await self.database.close()


def create_component(
    settings: UserSettings | None = None, *, transport: EventTransport | None = None
) -> UserComponent:
    return UserComponent(settings=settings or UserSettings(), transport=transport)
