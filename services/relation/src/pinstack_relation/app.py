"""Composition root of the relation service: builds every collaborator and owns their lifecycle.

Events: follows are announced through the outbox (``pinstack.relation.events.v1``) and an
:class:`OutboxRelay` publishes them right after each commit; an :class:`EventConsumer` (group
``relation``) applies ``UserDeleted`` from ``pinstack.user.events.v1``. The transport is the one
``pinstack up`` shares (in-process), or Kafka opened from the settings.
"""

from __future__ import annotations

from functools import partial

from pinstack.relation.v1 import relation_pb2_grpc
from pinstack_common.events import EventTransport, Outbox
from pinstack_common.runtime import ServiceComponent, ServiceRuntime
from pinstack_relation.events import CONSUMED_TOPICS, RelationEvents, handlers
from pinstack_relation.grpc_api import RelationServicer
from pinstack_relation.models import outbox as outbox_table
from pinstack_relation.models import processed_events
from pinstack_relation.repository import RelationRepository
from pinstack_relation.settings import RelationSettings
from pinstack_relation.usecases import RelationUseCases

__all__ = ["MIGRATIONS_PACKAGE", "RelationComponent", "create_component"]

MIGRATIONS_PACKAGE = "pinstack_relation"


class RelationComponent(ServiceComponent):
    name = "relation"
    settings: RelationSettings
    use_cases: RelationUseCases | None = None

    async def wire(self, runtime: ServiceRuntime) -> None:
        settings = self.settings
        database = runtime.database()
        outbox = Outbox(table=outbox_table)
        self.use_cases = RelationUseCases(
            database=database,
            repository=RelationRepository(),
            events=RelationEvents(outbox=outbox),
            users=runtime.user_directory(),
            max_limit=settings.list_max_limit,
        )
        await runtime.relay(database=database, outbox=outbox)
        await runtime.consume(
            database=database,
            processed=processed_events,
            topics=CONSUMED_TOPICS,
            handlers=handlers(forget_user=self.use_cases.forget_user),
        )
        servicer = RelationServicer(relations=self.use_cases, verifier=runtime.token_verifier())
        await runtime.serve(
            service_name="pinstack.relation.v1.RelationService",
            registration=partial(relation_pb2_grpc.add_RelationServiceServicer_to_server, servicer),
        )


def create_component(
    settings: RelationSettings | None = None, *, transport: EventTransport | None = None
) -> RelationComponent:
    return RelationComponent(settings=settings or RelationSettings(), transport=transport)
