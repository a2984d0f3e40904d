"""Composition root of the post service: builds every collaborator and owns their lifecycle."""

from __future__ import annotations

from functools import partial

from pinstack.post.v1 import post_pb2_grpc
from pinstack.user.v1 import user_pb2_grpc
from pinstack.user.v1.events_pb2 import UserDeleted, UserUpdated
from pinstack_common.cache import Cache
from pinstack_common.db import Database
from pinstack_common.events import EventTransport, Outbox, topic_for
from pinstack_common.runtime import ServiceRuntime
from pinstack_post.authors import AuthorDirectory
from pinstack_post.caching import PostCache
from pinstack_post.events import PostEvents, user_event_handlers
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
        self._runtime: ServiceRuntime | None = None
        self.database: Database | None = None
        self.outbox = Outbox(table=outbox)
        self.use_cases: PostUseCases | None = None

    @property
    def address(self) -> str:
        if self._runtime is None:
            raise RuntimeError("post service is not started")
        return self._runtime.address

    async def start(self) -> None:
        settings = self._settings
        runtime = ServiceRuntime(
            name=self.name, settings=settings, shared_transport=self._shared_transport
        )
        try:
            self.database = runtime.database()
            redis = runtime.redis()
            users = user_pb2_grpc.UserServiceStub(
                runtime.channel(address=settings.user_addr, service="user")
            )
            self.use_cases = PostUseCases(
                database=self.database,
                repository=PostRepository(),
                events=PostEvents(outbox=self.outbox),
                authors=AuthorDirectory(
                    users=users,
                    cache=Cache(
                        redis=redis,
                        component=self.name,
                        ttl_seconds=settings.author_cache_ttl_seconds,
                    ),
                ),
                cache=PostCache(
                    cache=Cache(
                        redis=redis, component=self.name, ttl_seconds=settings.cache_ttl_seconds
                    )
                ),
                default_limit=settings.list_default_limit,
                max_limit=settings.list_max_limit,
            )
            await runtime.relay(database=self.database, outbox=self.outbox)
            on_deleted, on_updated = user_event_handlers(self.use_cases)
            await runtime.consume(
                database=self.database,
                processed=processed_events,
                topics=[topic_for("user")],
                handlers={UserDeleted: on_deleted, UserUpdated: on_updated},
            )
            servicer = PostServicer(posts=self.use_cases, verifier=runtime.token_verifier())
            await runtime.serve(
                service_name="pinstack.post.v1.PostService",
                registration=partial(post_pb2_grpc.add_PostServiceServicer_to_server, servicer),
            )
        except BaseException:
            await runtime.close()  # release whatever was opened before the failure
            raise
        self._runtime = runtime

    async def stop(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None


def create_component(
    settings: PostSettings | None = None, *, transport: EventTransport | None = None
) -> PostComponent:
    return PostComponent(settings=settings or PostSettings(), transport=transport)
