"""Composition root of the relation service: builds every collaborator and owns their lifecycle.

Events: follows are announced through the outbox (``pinstack.relation.events.v1``) and an
:class:`OutboxRelay` publishes them right after each commit; an :class:`EventConsumer` (group
``relation``) applies ``UserDeleted`` from ``pinstack.user.events.v1``. The transport is the one
``pinstack up`` shares (in-process), or Kafka opened from the settings.
"""

from __future__ import annotations

from functools import partial

import grpc

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.relation.v1 import relation_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_common.db import Database
from pinstack_common.events import EventConsumer, EventTransport, OutboxRelay, topic_for
from pinstack_common.events.outbox import Outbox
from pinstack_common.events.wiring import TransportHandle, open_transport
from pinstack_common.grpc_client import open_channel
from pinstack_common.grpc_server import GrpcServer
from pinstack_common.tokens import AccessTokenVerifier
from pinstack_relation.clients import GrpcUserDirectory
from pinstack_relation.events import RelationEvents
from pinstack_relation.grpc_api import RelationServicer
from pinstack_relation.models import outbox as outbox_table
from pinstack_relation.models import processed_events
from pinstack_relation.repository import RelationRepository
from pinstack_relation.settings import RelationSettings
from pinstack_relation.usecases import RelationUseCases

__all__ = ["MIGRATIONS_PACKAGE", "RelationComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_relation"
CONSUMER_GROUP = "relation"


class RelationComponent:
    name = "relation"

    def __init__(
        self, *, settings: RelationSettings, transport: EventTransport | None = None
    ) -> None:
        self._settings = settings
        self._shared_transport = transport
        self._events: TransportHandle | None = None
        self._relay: OutboxRelay | None = None
        self._consumer: EventConsumer | None = None
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
        try:
            await self._start()
        except BaseException:
            await self.stop()  # release whatever was opened before the failure
            raise

    async def _start(self) -> None:
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
        self._events = open_transport(settings, client_id=self.name, shared=self._shared_transport)
        await self._events.start()
        self._relay = OutboxRelay(
            database=self.database,
            outbox=self.outbox,
            transport=self._events.transport,
            component=self.name,
        )
        await self._relay.start()
        self._consumer = EventConsumer(
            transport=self._events.transport,
            database=self.database,
            processed=processed_events,
            group=CONSUMER_GROUP,
            topics=[topic_for("user")],
            component=self.name,
        )
        self._consumer.on(UserDeleted, self.use_cases.on_user_deleted)
        await self._consumer.start()
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
            self._server = None
        # After the server: the last requests' events still get published by the relay.
        for part in (self._consumer, self._relay, self._events):
            if part is not None:
                await part.stop()
        self._consumer = self._relay = self._events = None
        for channel in reversed(self._channels):
            await channel.close()
        self._channels.clear()
        if self.database is not None:
            await self.database.close()
            self.database = None


def create_component(
    settings: RelationSettings | None = None, *, transport: EventTransport | None = None
) -> RelationComponent:
    return RelationComponent(settings=settings or RelationSettings(), transport=transport)
