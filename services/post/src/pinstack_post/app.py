"""Composition root of the post service: builds every collaborator and owns their lifecycle."""

from __future__ import annotations

from functools import partial

from pinstack.post.v1 import post_pb2_grpc
from pinstack_common.cache import Cache
from pinstack_common.db.database import Database
from pinstack_common.events import EventTransport, Outbox
from pinstack_common.runtime import ServiceComponent, ServiceRuntime
from pinstack_post.authors import AuthorDirectory
from pinstack_post.caching import PostCache
from pinstack_post.events import CONSUMED_TOPICS, PostEvents, handlers
from pinstack_post.grpc_api import PostServicer
from pinstack_post.models import outbox, processed_events
from pinstack_post.repository import PostRepository
from pinstack_post.settings import PostSettings
from pinstack_post.usecases import PostUseCases

__all__ = ["MIGRATIONS_PACKAGE", "PostComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_post"


class PostComponent(ServiceComponent):
    name = "post"
    settings: PostSettings
    database: Database | None = None
    use_cases: PostUseCases | None = None

    async def wire(self, runtime: ServiceRuntime) -> None:
        settings = self.settings
        self.database = runtime.database()
        redis = runtime.redis()
        post_outbox = Outbox(table=outbox)
        self.use_cases = PostUseCases(
            database=self.database,
            repository=PostRepository(),
            events=PostEvents(outbox=post_outbox),
            authors=AuthorDirectory(
                users=runtime.user_directory(),
                cache=Cache(
                    redis=redis, component=self.name, ttl_seconds=settings.author_cache_ttl_seconds
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
        await runtime.relay(database=self.database, outbox=post_outbox)
        await runtime.consume(
            database=self.database,
            processed=processed_events,
            topics=CONSUMED_TOPICS,
            handlers=handlers(
                delete_posts_of_author=self.use_cases.delete_posts_of_author,
                refresh_author=self.use_cases.refresh_author,
            ),
        )
        servicer = PostServicer(posts=self.use_cases, verifier=runtime.token_verifier())
        await runtime.serve(
            service_name="pinstack.post.v1.PostService",
            registration=partial(post_pb2_grpc.add_PostServiceServicer_to_server, servicer),
        )


def create_component(
    settings: PostSettings | None = None, *, transport: EventTransport | None = None
) -> PostComponent:
    return PostComponent(settings=settings or PostSettings(), transport=transport)
