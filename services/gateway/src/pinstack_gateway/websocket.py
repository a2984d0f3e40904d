"""``GET /api/v1/notification/ws``: the caller's new notifications, pushed live.

Design (the whole push path is in ``docs/events.md``, "Live push"): the gateway authenticates
the socket (``Authorization: Bearer <token>`` header, or a ``token`` query parameter for
browsers, which cannot set headers on a WebSocket), then opens the server-streaming RPC
``NotificationService.StreamNotifications`` with that token: one stream per socket, on whichever
notification replica the channel reaches. The notification service verifies the caller again and
streams each notification of that caller once its transaction commits, whichever replica created
it (every replica reads all new notifications from one Redis stream, see
:mod:`pinstack_notification.push`). Any gateway replica can serve any socket.

The handshake completes only once the service confirmed the subscription, so a client that
connected sees everything created afterwards. Each pushed message is the contract's
notification object ``N``.

Session rules (``docs/security.md``): a refused socket is accepted and closed at once with 1008
(policy violation) and a reason (``unauthenticated``, ``invalid token``, ``token expired``,
``too many connections``), so a browser can read why; 1013 (try again later) when the
notification service is unavailable, or when whether the session still holds cannot be known
(Redis and auth both unreachable: closed, never left open). An open socket is closed with 1008
``token expired`` when its access token expires and with 1008 ``session ended`` once its
session was ended (logout,
password change, account deletion: revocations recorded in Redis by auth), checked every
``ws_revocation_check_seconds`` and before each push. One user holds at most
``ws_max_connections_per_user`` sockets on one gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeAlias

import grpc
import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from pinstack.notification.v1 import notification_pb2
from pinstack_common.errors import UnauthenticatedError, UnavailableError
from pinstack_common.observability.metrics import WEBSOCKET_CONNECTIONS
from pinstack_common.security.revocation import SessionRevocations
from pinstack_common.security.tokens import Identity
from pinstack_gateway.identity import authenticate
from pinstack_gateway.routes.notifications import notification_json
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.upstreams import Upstreams

__all__ = [
    "POLICY_VIOLATION",
    "SESSION_ENDED",
    "TOKEN_EXPIRED",
    "TOO_MANY_CONNECTIONS",
    "TRY_AGAIN_LATER",
    "WS_PATH",
    "router",
]

WS_PATH = "/api/v1/notification/ws"
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
SESSION_CHECK_UNAVAILABLE = "session check unavailable"
TOKEN_EXPIRED = "token expired"  # noqa: S105 - a close reason, not a secret
SESSION_ENDED = "session ended"
TOO_MANY_CONNECTIONS = "too many connections"

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


async def _refuse(socket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with ``code``: a browser sees the close code and reason, which a
    refused HTTP upgrade (403) would hide from it."""
    await socket.accept()
    await socket.close(code=code, reason=reason)


class _Session:
    """Whether an open socket's session still holds: not expired, not ended."""

    def __init__(
        self,
        *,
        identity: Identity,
        revocations: SessionRevocations | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identity = identity
        self._revocations = revocations
        self._clock = clock

    async def ended(self) -> tuple[int, str] | None:
        """The close code and reason if the session no longer holds (or whether it holds
        cannot be known: Redis and auth both unreachable), else None."""
        if self._clock() >= self._identity.expires_at:
            return POLICY_VIOLATION, TOKEN_EXPIRED
        try:
            revoked = self._revocations is not None and await self._revocations.is_revoked(
                self._identity
            )
        except UnavailableError:
            return TRY_AGAIN_LATER, SESSION_CHECK_UNAVAILABLE  # fail closed, but retryable
        return (POLICY_VIOLATION, SESSION_ENDED) if revoked else None

    async def watch(self, interval: float) -> tuple[int, str]:
        """Return the close code and reason once the session ends (checked every ``interval``
        seconds, and right at the token's expiry)."""
        while True:
            reason = await self.ended()
            if reason is not None:
                return reason
            await asyncio.sleep(max(0.0, min(interval, self._identity.expires_at - self._clock())))


@router.websocket(WS_PATH)
async def notifications_socket(socket: WebSocket) -> None:
    state = socket.app.state
    upstreams: Upstreams = state.upstreams
    settings: GatewaySettings = state.settings
    authorization = _authorization(socket)
    try:
        # Also forwards the token: the channel's stream interceptor sends it to the service.
        identity = await authenticate(state, authorization)
    except UnauthenticatedError as error:
        await _refuse(socket, POLICY_VIOLATION, error.message)
        return
    except (UnavailableError, grpc.aio.AioRpcError) as error:
        # Auth unreachable (its keys or the revocation check): a retryable close, not the
        # HTTP error the handler would make of it, which a browser cannot read.
        log.warning("socket refused: session check unavailable", error=str(error))
        await _refuse(socket, TRY_AGAIN_LATER, SESSION_CHECK_UNAVAILABLE)
        return
    session = _Session(identity=identity, revocations=state.revocations)
    counts: Counter[int] = state.ws_connections
    if counts[identity.user_id] >= settings.ws_max_connections_per_user:
        await _refuse(socket, POLICY_VIOLATION, TOO_MANY_CONNECTIONS)
        return
    counts[identity.user_id] += 1  # before any await: concurrent handshakes count too
    try:
        await _serve(socket, upstreams, session, settings.ws_revocation_check_seconds)
    finally:
        counts[identity.user_id] -= 1
        if counts[identity.user_id] <= 0:
            del counts[identity.user_id]


async def _serve(
    socket: WebSocket, upstreams: Upstreams, session: _Session, interval: float
) -> None:
    call = upstreams.notification.StreamNotifications(notification_pb2.StreamNotificationsRequest())
    try:
        await call.initial_metadata()  # the subscription is live once headers arrive
    except grpc.aio.AioRpcError as error:
        log.warning("notification stream refused", code=error.code().name)
        await _refuse(socket, TRY_AGAIN_LATER, "notification service unavailable")
        return
    await socket.accept()
    WEBSOCKET_CONNECTIONS.inc()
    # Reading is only for noticing the client leave; anything it sends is ignored.
    watcher = asyncio.create_task(_until_disconnect(socket))
    guard = asyncio.create_task(session.watch(interval))
    try:
        await _pump(socket, call, watcher, guard, session)
    finally:
        WEBSOCKET_CONNECTIONS.dec()
        watcher.cancel()
        guard.cancel()
        call.cancel()
        with contextlib.suppress(Exception):
            await socket.close()


async def _pump(
    socket: WebSocket,
    call: _NotificationStream,
    watcher: asyncio.Task[None],
    guard: asyncio.Task[tuple[int, str]],
    session: _Session,
) -> None:
    while True:
        nxt = asyncio.ensure_future(call.read())
        done, _ = await asyncio.wait({nxt, watcher, guard}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            nxt.cancel()
            return
        if guard in done:
            nxt.cancel()
            await _close(socket, *guard.result())
            return
        try:
            item = nxt.result()
        except grpc.aio.AioRpcError as error:
            log.warning("notification stream failed", code=error.code().name)
            item = grpc.aio.EOF
        if not isinstance(item, notification_pb2.Notification):
            # The service ended the stream (shutdown, outage): the client should reconnect.
            await _close(socket, TRY_AGAIN_LATER, "")
            return
        if (closing := await session.ended()) is not None:  # nothing reaches an ended session
            await _close(socket, *closing)
            return
        try:
            await socket.send_json(notification_json(item))
        except (WebSocketDisconnect, RuntimeError):
            return


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await socket.close(code=code, reason=reason)


async def _until_disconnect(socket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
