"""Composition root of the auth service: build the collaborators, run the gRPC server.

``pinstack serve auth`` and ``pinstack up`` start :class:`AuthComponent`; the CLI migrates the
database first (``pinstack_common.migrations.upgrade(package=MIGRATIONS_PACKAGE, ...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from functools import partial

import grpc
import structlog
from redis.asyncio import Redis

from pinstack.auth.v1 import auth_pb2_grpc
from pinstack.user.v1.events_pb2 import UserDeleted
from pinstack_auth.clients import GrpcUserDirectory
from pinstack_auth.events import CONSUMER_GROUP, user_deleted_handler
from pinstack_auth.grpc_api import AuthServicer
from pinstack_auth.keys import KeyRing, load_key_file, load_or_create_db_key
from pinstack_auth.models import processed_events
from pinstack_auth.passwords import PasswordHasher
from pinstack_auth.ratelimit import DisabledLoginLimiter, LoginLimiter, redis_login_limiter
from pinstack_auth.repository import AuthRepository
from pinstack_auth.settings import AuthSettings
from pinstack_auth.tokens import TokenService
from pinstack_auth.usecases import AuthUseCases
from pinstack_common.cache import open_redis
from pinstack_common.db import Database
from pinstack_common.events import EventConsumer, EventTransport, topic_for
from pinstack_common.events.wiring import TransportHandle, open_transport
from pinstack_common.grpc_client import open_channel
from pinstack_common.grpc_server import GrpcServer

__all__ = ["MIGRATIONS_PACKAGE", "SERVICE_NAME", "AuthComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_auth"
SERVICE_NAME = "pinstack.auth.v1.AuthService"

log = structlog.get_logger(__name__)


class AuthComponent:
    """The auth service as a :class:`pinstack_common.lifecycle.Component`."""

    name = "auth"

    def __init__(self, *, settings: AuthSettings, transport: EventTransport | None = None) -> None:
        self._shared_transport = transport
        self._events: TransportHandle | None = None
        self._consumer: EventConsumer | None = None
        self.settings = settings
        self.usecases: AuthUseCases | None = None
        self._database: Database | None = None
        self._redis: Redis | None = None
        self._channel: grpc.aio.Channel | None = None
        self._server: GrpcServer | None = None
        self._purger: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        """``host:port`` the gRPC server listens on (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("auth component not started")
        return self._server.address

    async def start(self) -> None:
        s = self.settings
        token = s.internal_token.get_secret_value()
        try:
            self._database = Database(
                url=s.database_url, component="auth", pool_size=s.db_pool_size
            )
            self._redis = open_redis(s.redis_url)
            self._channel = open_channel(
                address=s.user_addr,
                service="user",
                internal_token=token,
                timeout=s.rpc_timeout_seconds,
            )
            keys = await self._load_keys(self._database)
            self.usecases = AuthUseCases(
                database=self._database,
                repository=AuthRepository(),
                users=GrpcUserDirectory(channel=self._channel),
                passwords=PasswordHasher(
                    time_cost=s.argon2_time_cost,
                    memory_cost_kib=s.argon2_memory_cost_kib,
                    parallelism=s.argon2_parallelism,
                    max_concurrent=s.argon2_max_concurrent,
                ),
                tokens=TokenService(
                    keys=keys,
                    access_ttl=timedelta(seconds=s.access_token_ttl_seconds),
                    refresh_ttl=timedelta(seconds=s.refresh_token_ttl_seconds),
                ),
                limiter=self._limiter(self._redis),
            )
            self._events = open_transport(s, client_id="auth", shared=self._shared_transport)
            await self._events.start()
            self._consumer = EventConsumer(
                transport=self._events.transport,
                database=self._database,
                processed=processed_events,
                group=CONSUMER_GROUP,
                topics=[topic_for("user")],
                component="auth",
            )
            self._consumer.on(UserDeleted, user_deleted_handler(self.usecases))
            await self._consumer.start()
            servicer = AuthServicer(usecases=self.usecases)
            self._server = GrpcServer(
                component="auth",
                service_names=[SERVICE_NAME],
                registrations=[partial(auth_pb2_grpc.add_AuthServiceServicer_to_server, servicer)],
                host=s.grpc_host,
                port=s.grpc_port,
                internal_token=token,
            )
            await self._server.start()
            self._purger = asyncio.create_task(self._purge_periodically(self.usecases))
        except BaseException:
            await self.stop()
            raise
        log.info("auth started", address=self.address, signing_kid=keys.signing.kid)

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._events is not None:
            await self._events.stop()  # only stops a transport this component owns
            self._events = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._database is not None:
            await self._database.close()
            self._database = None
        self.usecases = None

    async def _purge_periodically(self, usecases: AuthUseCases) -> None:
        while True:
            await asyncio.sleep(self.settings.session_purge_interval_seconds)
            try:
                purged = await usecases.purge_sessions()
            except Exception:
                # Housekeeping only: a database hiccup must not end the task for good.
                log.exception("session purge failed")
            else:
                log.info("ended sessions purged", count=purged)

    async def _load_keys(self, database: Database) -> KeyRing:
        if self.settings.auth_signing_key_file is not None:
            return load_key_file(self.settings.auth_signing_key_file)
        async with database.transaction() as session:
            return await load_or_create_db_key(session)

    def _limiter(self, redis: Redis) -> LoginLimiter:
        s = self.settings
        if not s.rate_limits_enabled:
            return DisabledLoginLimiter()
        return redis_login_limiter(
            redis_url=s.redis_url,
            connection_pool=redis.connection_pool,
            per_account=s.login_failures_per_account,
            per_address=s.login_failures_per_address,
        )


def create_component(
    settings: AuthSettings, *, transport: EventTransport | None = None
) -> AuthComponent:
    return AuthComponent(settings=settings, transport=transport)
