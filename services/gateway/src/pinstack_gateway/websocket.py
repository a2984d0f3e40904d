"""``GET /api/v1/notification/ws``: the caller's new notifications, pushed live.

Design (the whole push path is in ``docs/events.md``, "Live push"): the gateway authenticates
the socket (``Authorization: Bearer <token>`` header, or a ``token`` query parameter for
browsers, which cannot set headers on a WebSocket), then opens the server-streaming RPC
``NotificationService.StreamNotifications`` with that token: one stream per socket, on whichever
notification replica the channel reaches. The notification service verifies the caller again and
streams each notification of that caller once its transaction commits, whichever replica created
it (every replica reads all new notifications from one Redis stream, see
:mod:`pinstack_notification.push`). The gateway holds no per-user state, so it works the same
embedded and distributed, and any gateway replica can serve any socket.

The handshake completes only once the service confirmed the subscription, so a client that
connected sees everything created afterwards. Each pushed message is the contract's
notification object ``N``. An unauthenticated socket is refused with close code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeAlias

import grpc
import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from pinstack.notification.v1 import notification_pb2
from pinstack_common.errors import UnauthenticatedError
from pinstack_common.metrics import WEBSOCKET_CONNECTIONS
from pinstack_gateway.identity import authenticate
from pinstack_gateway.routes.notifications import notification_json
from pinstack_gateway.upstreams import Upstreams

__all__ = ["WS_PATH", "router"]

WS_PATH = "/api/v1/notification/ws"
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013

log = structlog.get_logger(__name__)

router = APIRouter()

_NotificationStream: TypeAlias = grpc.aio.UnaryStreamCall[
    notification_pb2.StreamNotificationsRequest, notification_pb2.Notification
]


def _authorization(socket: WebSocket) -> str | None:
    header = socket.headers.get("authorization") or socket.query_params.get("token")
    if header and not header.lower().startswith("bearer "):
        header = f"Bearer {header}"  # a bare token in the query string
    return header


@router.websocket(WS_PATH)
async def notifications_socket(socket: WebSocket) -> None:
    upstreams: Upstreams = socket.app.state.upstreams
    try:
        # Also forwards the token: the channel's stream interceptor sends it to the service.
        await authenticate(socket.app.state, _authorization(socket))
    except UnauthenticatedError as error:
        await socket.close(code=POLICY_VIOLATION, reason=error.message)
        return
    call = upstreams.notification.StreamNotifications(notification_pb2.StreamNotificationsRequest())
    try:
        await call.initial_metadata()  # the subscription is live once headers arrive
    except grpc.aio.AioRpcError as error:
        log.warning("notification stream refused", code=error.code().name)
        await socket.close(code=TRY_AGAIN_LATER)
        return
    await socket.accept()
    WEBSOCKET_CONNECTIONS.inc()
    # Reading is only for noticing the client leave; anything it sends is ignored.
    watcher = asyncio.create_task(_until_disconnect(socket))
    try:
        await _pump(socket, call, watcher)
    finally:
        WEBSOCKET_CONNECTIONS.dec()
        watcher.cancel()
        call.cancel()
        with contextlib.suppress(Exception):
            await socket.close()


async def _pump(socket: WebSocket, call: _NotificationStream, watcher: asyncio.Task[None]) -> None:
    while True:
        nxt = asyncio.ensure_future(call.read())
        done, _ = await asyncio.wait({nxt, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            nxt.cancel()
            return
        try:
            item = nxt.result()
        except grpc.aio.AioRpcError as error:
            log.warning("notification stream failed", code=error.code().name)
            item = grpc.aio.EOF
        if not isinstance(item, notification_pb2.Notification):
            # The service ended the stream (shutdown, outage): the client should reconnect.
            await socket.close(code=TRY_AGAIN_LATER)
            return
        try:
            await socket.send_json(notification_json(item))
        except (WebSocketDisconnect, RuntimeError):
            return


async def _until_disconnect(socket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
