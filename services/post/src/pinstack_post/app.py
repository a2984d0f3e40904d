"""Composition root of the post service: builds every collaborator and owns their lifecycle."""

from __future__ import annotations

from functools import partial

import grpc
from redis.asyncio import Redis

from pinstack.auth.v1 import auth_pb2, auth_pb2_grpc
from pinstack.post.v1 import post_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack.user.v1.events_pb2 import UserDeleted, UserUpdated
from pinstack_common.cache import Cache, open_redis
from pinstack_common.db import Database
from pinstack_common.events import EventConsumer, EventTransport, Outbox, OutboxRelay, topic_for
from pinstack_common.events.wiring import TransportHandle, open_transport
from pinstack_common.grpc_client import open_channel
from pinstack_common.grpc_server import GrpcServer
from pinstack_common.tokens import AccessTokenVerifier
from pinstack_post.authors import AuthorDirectory
from pinstack_post.caching import PostCache
from pinstack_post.events import CONSUMER_GROUP, PostEvents, user_event_handlers
from pinstack_post.grpc_api import PostServicer
from pinstack_post.models import outbox, processed_events
from pinstack_post.repository import PostRepository
from pinstack_post.settings import PostSettings
from pinstack_post.usecases import PostUseCases

__all__ = ["MIGRATIONS_PACKAGE", "PostComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_post"


class PostComponent:
    name = "post"

    def __init__(self, *, settings: PostSettings, transport: EventTransport | None = None) -> None:
        self._settings = settings
        self._shared_transport = transport
        self._events: TransportHandle | None = None
        self._relay: OutboxRelay | None = None
        self._consumer: EventConsumer | None = None
        self.database: Database | None = None
        self.outbox = Outbox(table=outbox)
        self._redis: Redis | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._server: GrpcServer | None = None
        self.use_cases: PostUseCases | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("post service is not started")
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
        self._redis = open_redis(settings.redis_url)
        cache = Cache(
            redis=self._redis, component=self.name, ttl_seconds=settings.cache_ttl_seconds
        )
        auth = auth_pb2_grpc.AuthServiceStub(self._channel(settings.auth_addr, "auth"))
        users = user_pb2_grpc.UserServiceStub(self._channel(settings.user_addr, "user"))

        async def jwks() -> str:
            return str((await auth.GetJwks(auth_pb2.GetJwksRequest())).jwks_json)

        self._events = open_transport(settings, client_id=self.name, shared=self._shared_transport)
        await self._events.start()
        self._relay = OutboxRelay(
            database=self.database,
            outbox=self.outbox,
            transport=self._events.transport,
            component=self.name,
        )
        await self._relay.start()

        self.use_cases = PostUseCases(
            database=self.database,
            repository=PostRepository(),
            events=PostEvents(outbox=self.outbox),
            authors=AuthorDirectory(
                users=users,
                cache=Cache(
                    redis=self._redis,
                    component=self.name,
                    ttl_seconds=settings.author_cache_ttl_seconds,
                ),
            ),
            cache=PostCache(cache=cache),
            default_limit=settings.list_default_limit,
            max_limit=settings.list_max_limit,
        )
        self._consumer = EventConsumer(
            transport=self._events.transport,
            database=self.database,
            processed=processed_events,
            group=CONSUMER_GROUP,
            topics=[topic_for("user")],
            component=self.name,
        )
        on_deleted, on_updated = user_event_handlers(self.use_cases)
        self._consumer.on(UserDeleted, on_deleted)
        self._consumer.on(UserUpdated, on_updated)
        await self._consumer.start()
        servicer = PostServicer(
            posts=self.use_cases, verifier=AccessTokenVerifier(jwks_source=jwks)
        )
        self._server = GrpcServer(
            component=self.name,
            service_names=["pinstack.post.v1.PostService"],
            registrations=[partial(post_pb2_grpc.add_PostServiceServicer_to_server, servicer)],
            host=settings.grpc_host,
            port=settings.grpc_port,
            internal_token=settings.internal_token.get_secret_value(),
        )
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self._events is not None:
            await self._events.stop()
        for channel in reversed(self._channels):
            await channel.close()
        self._channels.clear()
        if self._redis is not None:
            await self._redis.aclose()
        if self.database is not None:
            await self.database.close()


def create_component(
    settings: PostSettings | None = None, *, transport: EventTransport | None = None
) -> PostComponent:
    return PostComponent(settings=settings or PostSettings(), transport=transport)
