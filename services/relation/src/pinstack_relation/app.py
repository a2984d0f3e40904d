"""Composition root of the relation service: builds every collaborator and owns their lifecycle.

Events: follows are announced through the outbox (``pinstack.relation.events.v1``); relaying
the outbox and consuming ``UserDeleted`` (handler :meth:`RelationUseCases.on_user_deleted`) are
attached by the process's composition root once the event backbone is wired (``outbox`` and
``use_cases`` are public for that).
"""

from __future__ import annotations

from functools import partial

import grpc

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.relation.v1 import relation_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.db import Database
from pinstack_common.events.outbox import Outbox
from pinstack_common.grpc_client import open_channel
from pinstack_common.grpc_server import GrpcServer
from pinstack_common.tokens import AccessTokenVerifier
from pinstack_relation.clients import GrpcUserDirectory
from pinstack_relation.events import RelationEvents
from pinstack_relation.grpc_api import RelationServicer
from pinstack_relation.models import outbox as outbox_table
from pinstack_relation.repository import RelationRepository
from pinstack_relation.settings import RelationSettings
from pinstack_relation.usecases import RelationUseCases

__all__ = ["MIGRATIONS_PACKAGE", "RelationComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_relation"


class RelationComponent:
    name = "relation"

    def __init__(self, *, settings: RelationSettings) -> None:
        self._settings = settings
        self.database: Database | None = None
        self.outbox = Outbox(table=outbox_table)
        self._channels: list[grpc.aio.Channel] = []
        self._server: GrpcServer | None = None
        self.use_cases: RelationUseCases | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("relation service is not started")
        return self._server.address

    def _channel(self, address: str, service: str) -> grpc.aio.Channel:
        channel = open_channel(
            address=address,
            service=service,
            internal_token=self._settings.internal_token.get_secret_value(),
            timeout=self._settings.rpc_timeout_seconds,
        )
        self._channels.append(channel)
        return channel

    async def start(self) -> None:
        settings = self._settings
        self.database = Database(
            url=settings.database_url, component=self.name, pool_size=settings.db_pool_size
        )
        auth = auth_pb2_grpc.AuthServiceStub(self._channel(settings.auth_addr, "auth"))
        users = user_pb2_grpc.UserServiceStub(self._channel(settings.user_addr, "user"))

        async def jwks() -> str:
            return str((await auth.GetJwks(auth_pb2.GetJwksRequest())).jwks_json)

        self.use_cases = RelationUseCases(
            database=self.database,
            repository=RelationRepository(),
            events=RelationEvents(outbox=self.outbox),
            users=GrpcUserDirectory(stub=users),
            max_limit=settings.list_max_limit,
        )
        servicer = RelationServicer(
            relations=self.use_cases, verifier=AccessTokenVerifier(jwks_source=jwks)
        )
        self._server = GrpcServer(
            component=self.name,
            service_names=["pinstack.relation.v1.RelationService"],
            registrations=[
                partial(relation_pb2_grpc.add_RelationServiceServicer_to_server, servicer)
            ],
            host=settings.grpc_host,
            port=settings.grpc_port,
            internal_token=settings.internal_token.get_secret_value(),
        )
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        for channel in reversed(self._channels):
            await channel.close()
        self._channels.clear()
        if self.database is not None:
            await self.database.close()


def create_component(settings: RelationSettings | None = None) -> RelationComponent:
    return RelationComponent(settings=settings or RelationSettings())
