"""Choosing an event transport at a composition root.

``pinstack up`` shares one :class:`InProcessTransport` between every component it hosts and passes
it in; a component that is given none opens a Kafka transport from its settings and owns it.
"""

from __future__ import annotations

from pinstack_common.events.kafka import KafkaTransport
from pinstack_common.events.transport import EventTransport
from pinstack_common.settings import ServiceSettings
from pinstack_common.telemetry import traced_transport

__all__ = ["TransportHandle", "open_transport"]


class TransportHandle:
    """A transport plus whether this component must start and stop it."""

    def __init__(self, *, transport: EventTransport, owned: bool) -> None:
        self.transport = transport
        self.owned = owned

    async def start(self) -> None:
        if self.owned:
            await self.transport.start()

    async def stop(self) -> None:
        if self.owned:
            await self.transport.stop()


def open_transport(
    settings: ServiceSettings, *, client_id: str, shared: EventTransport | None
) -> TransportHandle:
    if shared is not None:
        return TransportHandle(transport=shared, owned=False)
    if settings.event_transport != "kafka":
        raise ValueError(
            "the in-process event transport only exists inside `pinstack up`; "
            "set PINSTACK_EVENT_TRANSPORT=kafka and PINSTACK_KAFKA_BOOTSTRAP_SERVERS"
        )
    transport = KafkaTransport(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id
    )
    return TransportHandle(transport=traced_transport(transport), owned=True)
