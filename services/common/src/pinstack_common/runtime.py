"""What every gRPC service opens at start-up, closed in reverse order at shutdown.

A service's composition root (its ``app.py``) asks a :class:`ServiceRuntime` for the pieces it
needs — its database, Redis, channels to peers, the caller-token verifier, the event transport,
an outbox relay, an event consumer, the gRPC server — and wires its own use cases between them.
Everything opened is pushed on one exit stack, so ``close()`` releases it newest first: the
server stops taking requests, then consumers and the relay drain, then connections close.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import Message
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from pinstack.auth.v1 import auth_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack_common.cache import open_redis
from pinstack_common.db.database import Database
from pinstack_common.events import EventConsumer, EventTransport, Outbox, OutboxRelay
from pinstack_common.events.kafka import KafkaTransport
from pinstack_common.grpc.client import fetch_jwks, open_channel
from pinstack_common.grpc.server import GrpcServer, Registration
from pinstack_common.grpc.user_directory import GrpcUserDirectory
from pinstack_common.observability.telemetry import traced_transport
from pinstack_common.security.ratelimit import moving_window
from pinstack_common.security.tokens import AccessTokenVerifier
from pinstack_common.settings import ServiceSettings

__all__ = ["EventHandlers", "ServiceComponent", "ServiceRuntime"]

# Event type -> handler(message, session) running in the consumer's transaction.
EventHandlers = Mapping[type[Message], Callable[[Any, AsyncSession], Awaitable[None]]]


class ServiceRuntime:
    def __init__(
        self, *, name: str, settings: ServiceSettings, shared_transport: EventTransport | None
    ) -> None:
        self.name = name
        self.settings = settings
        self._shared_transport = shared_transport
        self._stack = contextlib.AsyncExitStack()
        self._transport: EventTransport | None = None
        self.server: GrpcServer | None = None

    @property
    def address(self) -> str:
        if self.server is None:
            raise RuntimeError(f"{self.name} service is not started")
        return self.server.address

    def database(self) -> Database:
        s = self.settings
        database = Database(url=s.database_url, component=self.name, pool_size=s.db_pool_size)
        self._stack.push_async_callback(database.close)
        return database

    def redis(self) -> Redis:
        redis = open_redis(self.settings.redis_url)
        self._stack.push_async_callback(redis.aclose)
        return redis

    def rate_limiter(self, redis: Redis) -> MovingWindowRateLimiter | None:
        """Moving windows counted in ``redis``; None when ``rate_limits_enabled`` is off
        (benchmarks, load tests)."""
        if not self.settings.rate_limits_enabled:
            return None
        return moving_window(
            redis_url=self.settings.redis_url,
            connection_pool=redis.connection_pool,
            component=self.name,
        )

    def channel(self, *, address: str, service: str) -> grpc.aio.Channel:
        channel = open_channel(
            address=address,
            service=service,
            internal_token=self.settings.internal_token.get_secret_value(),
            timeout=self.settings.rpc_timeout_seconds,
        )
        self._stack.push_async_callback(channel.close)
        return channel

    def users(self) -> user_pb2_grpc.UserServiceAsyncStub:
        """A stub for the user service, the peer that most services ask."""
        return user_pb2_grpc.UserServiceStub(
            self.channel(address=self.settings.user_addr, service="user")
        )

    def user_directory(self) -> GrpcUserDirectory:
        """The user service's existence checks and batched profiles."""
        return GrpcUserDirectory(stub=self.users())

    def token_verifier(self) -> AccessTokenVerifier:
        """Verifies callers' access tokens with the auth service's published keys."""
        auth = auth_pb2_grpc.AuthServiceStub(
            self.channel(address=self.settings.auth_addr, service="auth")
        )
        return AccessTokenVerifier(jwks_source=partial(fetch_jwks, auth))

    async def transport(self) -> EventTransport:
        """The event transport: the one ``pinstack up`` shares, else a Kafka one owned here."""
        if self._transport is None and self._shared_transport is not None:
            self._transport = self._shared_transport
        if self._transport is None:
            if self.settings.event_transport != "kafka":
                raise ValueError(
                    "the in-process event transport only exists inside `pinstack up`; "
                    "set PINSTACK_EVENT_TRANSPORT=kafka and PINSTACK_KAFKA_BOOTSTRAP_SERVERS"
                )
            transport = traced_transport(
                KafkaTransport(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    client_id=self.name,
                    extra_config=self.settings.kafka_client_config(),
                )
            )
            await transport.start()
            self._stack.push_async_callback(transport.stop)
            self._transport = transport
        return self._transport

    async def relay(self, *, database: Database, outbox: Outbox) -> OutboxRelay:
        relay = OutboxRelay(
            database=database, outbox=outbox, transport=await self.transport(), component=self.name
        )
        await relay.start()
        self._stack.push_async_callback(relay.stop)
        return relay

    async def consume(
        self,
        *,
        database: Database,
        processed: Table,
        topics: Sequence[str],
        handlers: EventHandlers,
    ) -> EventConsumer:
        consumer = EventConsumer(
            transport=await self.transport(),
            database=database,
            processed=processed,
            group=self.name,
            topics=topics,
            component=self.name,
        )
        for message_type, handler in handlers.items():
            consumer.on(message_type, handler)
        await consumer.start()
        self._stack.push_async_callback(consumer.stop)
        return consumer

    async def serve(self, *, service_name: str, registration: Registration) -> GrpcServer:
        s = self.settings
        self.server = GrpcServer(
            component=self.name,
            service_names=[service_name],
            registrations=[registration],
            host=s.grpc_host,
            port=s.grpc_port,
            internal_token=s.internal_token.get_secret_value(),
        )
        await self.server.start()
        self._stack.push_async_callback(self.server.stop)
        return self.server

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` at shutdown, before what was opened earlier is closed."""
        self._stack.push_async_callback(callback)

    async def close(self) -> None:
        await self._stack.aclose()


class ServiceComponent:
    """The lifecycle every gRPC service shares; a service only says how it is wired.

    Subclasses set ``name`` and implement :meth:`wire`, which asks the runtime for what the
    service needs and builds its use cases and servicer. A failure half-way releases whatever
    was opened; :meth:`stop` closes it all in reverse order.
    """

    name: str = "service"

    def __init__(
        self, *, settings: ServiceSettings, transport: EventTransport | None = None
    ) -> None:
        self.settings = settings
        self._shared_transport = transport
        self._runtime: ServiceRuntime | None = None

    @property
    def address(self) -> str:
        if self._runtime is None:
            raise RuntimeError(f"{self.name} service is not started")
        return self._runtime.address

    async def wire(self, runtime: ServiceRuntime) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        runtime = ServiceRuntime(
            name=self.name, settings=self.settings, shared_transport=self._shared_transport
        )
        try:
            await self.wire(runtime)
        except BaseException:
            await runtime.close()  # release whatever was opened before the failure
            raise
        self._runtime = runtime

    async def stop(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None
