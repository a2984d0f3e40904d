"""WebSocket push with two notification replicas and two gateway replicas (scale-out).

The session's embedded stack provides notification replica A and gateway A (which streams from
A). This module starts replica B of each on the same databases and Redis, gateway B streaming
from notification B: the topology of two replicas behind a Service, with each gateway's channel
pinned to a different notification pod. A user holds sockets on both gateways; notifications
are created on both notification replicas; every socket must get each of them exactly once.

"Nothing more arrives" is checked without sleeping: after the notifications under test, one
barrier notification goes through each replica. Each replica publishes in creation order to one
shared stream that every replica reads in order, so once both barriers arrived on a socket,
everything created before them has arrived too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from pinstack_common.events import InProcessTransport
from pinstack_common.settings import ServiceSettings
from pinstack_devinfra.ports import free_port
from pinstack_gateway.app import GatewayComponent
from pinstack_gateway.app import create_component as create_gateway
from pinstack_gateway.settings import GatewaySettings
from pinstack_notification.app import NotificationComponent
from pinstack_notification.app import create_component as create_notification
from pinstack_notification.settings import NotificationSettings
from tests.contract.conftest import Account, RunningStack

WS_PATH = "/api/v1/notification/ws"
DEADLINE = 15.0
CREATED = 20


@dataclass
class Replica:
    name: str
    notification: NotificationComponent
    client: httpx.AsyncClient  # to this replica's gateway, which streams from its notification

    @property
    def ws_url(self) -> str:
        return str(self.client.base_url).replace("http://", "ws://").rstrip("/") + WS_PATH


@pytest.fixture
async def replicas(stack: RunningStack) -> AsyncIterator[tuple[Replica, Replica]]:
    (notification_a,) = [c for c in stack.embedded.components if c.name == "notification"]
    assert isinstance(notification_a, NotificationComponent)
    settings_a = notification_a.settings
    # Replica B: same databases, Redis and peers. Its own event bus, because an in-process
    # consumer group has one member; the push path under test does not go through events.
    notification_b = create_notification(
        NotificationSettings(**{**settings_a.model_dump(), "grpc_port": free_port()}),
        transport=InProcessTransport(),
    )
    await notification_b.start()
    shared = {name: getattr(settings_a, name) for name in ServiceSettings.model_fields}
    gateway_b: GatewayComponent = create_gateway(
        GatewaySettings(
            **{**shared, "http_port": free_port(), "notification_addr": notification_b.address}
        )
    )
    try:
        await gateway_b.start()
        async with httpx.AsyncClient(base_url=gateway_b.url, timeout=10) as client_b:
            yield (
                Replica("a", notification_a, stack.client),
                Replica("b", notification_b, client_b),
            )
    finally:
        await gateway_b.stop()  # reverse order of start
        await notification_b.stop()


async def send(replica: Replica, sender: Account, recipient: Account, type: str) -> int:
    response = await replica.client.post(
        "/api/v1/notification/send",
        json={"user_id": recipient.id, "type": type, "payload": {"via": replica.name}},
        headers=sender.headers,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["notification_id"])


async def receive_until(socket: Any, wanted: set[int]) -> list[dict[str, Any]]:
    """Everything pushed on ``socket`` until all of ``wanted`` arrived, within the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    received: list[dict[str, Any]] = []
    while not wanted <= {item["id"] for item in received}:
        try:
            message = await asyncio.wait_for(socket.recv(), timeout=deadline - loop.time())
        except TimeoutError:
            got = sorted(item["id"] for item in received)
            raise AssertionError(f"missing {sorted(wanted - set(got))}; received {got}") from None
        received.append(json.loads(message))
    return received


async def test_every_socket_gets_each_notification_once_across_replicas(
    stack: RunningStack, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    bob = await stack.register()
    senders = {a.name: await stack.register(), b.name: await stack.register()}
    async with (
        websockets.connect(a.ws_url, additional_headers=bob.headers) as on_a,
        websockets.connect(b.ws_url, additional_headers=bob.headers) as on_b,
        websockets.connect(b.ws_url, additional_headers=bob.headers) as on_b_too,
    ):
        # Each gateway's stream is held by its own notification replica.
        assert a.notification.broadcaster.has_subscribers(bob.id)
        assert b.notification.broadcaster.has_subscribers(bob.id)

        created: list[int] = []
        for i in range(CREATED):  # alternate: half created on each notification replica
            replica = (a, b)[i % 2]
            created.append(await send(replica, senders[replica.name], bob, "scale-out"))
        barriers = {
            await send(replica, senders[replica.name], bob, "barrier") for replica in (a, b)
        }

        for socket in (on_a, on_b, on_b_too):
            received = await receive_until(socket, barriers)
            ids = [item["id"] for item in received if item["type"] == "scale-out"]
            assert sorted(ids) == sorted(created), "each notification exactly once"
            assert len(received) == CREATED + len(barriers)
            assert {item["user_id"] for item in received} == {bob.id}
            vias = [item["payload"]["via"] for item in received if item["type"] == "scale-out"]
            assert vias.count("a") == vias.count("b") == CREATED // 2
