"""WebSocket session rules at the gateway, on a real uvicorn server with fake upstreams.

A refused socket is accepted and closed with 1008 and a reason (not an HTTP 403 a browser cannot
read); an open socket is closed with 1008 when its token expires or its session ends (checked
periodically and before each push); one user holds a bounded number of sockets per gateway.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import structlog
import uvicorn
import websockets
from google.protobuf.timestamp_pb2 import Timestamp

from pinstack.notification.v1 import notification_pb2
from pinstack_common.errors import UnauthenticatedError, UnavailableError
from pinstack_common.observability.logging import REDACTED, configure_logging
from pinstack_common.security.tokens import Identity, bearer_token
from pinstack_gateway.app import create_app
from pinstack_gateway.settings import GatewaySettings
from pinstack_gateway.websocket import WS_PATH
from tests.polling import eventually


def make_token(user_id: int, session_id: str, *, lifetime: float = 600) -> str:
    """An unsigned JWT-shaped token; the fake verifier below reads it as if it had verified."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": str(user_id), "sid": session_id, "exp": int(time.time() + lifetime)}
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class FakeVerifier:
    auth_down = False  # its keys cannot be fetched: what the channel raises

    async def verify_header(self, authorization: str | None) -> Identity:
        if self.auth_down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
            )
        token = bearer_token(authorization)
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError) as error:
            raise UnauthenticatedError("invalid token") from error
        if claims["exp"] <= time.time():
            raise UnauthenticatedError("token expired")
        return Identity(
            user_id=int(claims["sub"]), session_id=claims["sid"], expires_at=float(claims["exp"])
        )


class FakeRevocations:
    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.unknowable = False  # Redis and auth both unreachable

    async def is_revoked(self, identity: Identity) -> bool:
        if self.unknowable:
            raise UnavailableError("external service unavailable")
        return identity.session_id in self.ended


class FakeCall:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[notification_pb2.Notification] = asyncio.Queue()

    async def initial_metadata(self) -> tuple[()]:
        return ()

    async def read(self) -> notification_pb2.Notification:
        return await self.queue.get()

    def cancel(self) -> bool:
        return True


class FakeNotificationStub:
    def __init__(self) -> None:
        self.calls: list[FakeCall] = []

    def StreamNotifications(self, request: object) -> FakeCall:  # noqa: N802 - gRPC's name
        call = FakeCall()
        self.calls.append(call)
        return call


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


Gateway = SimpleNamespace


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    servers: list[tuple[_Server, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Gateway:
        stub = FakeNotificationStub()

        async def jwks() -> str:
            return "{}"

        upstreams: Any = SimpleNamespace(notification=stub, jwks=jwks)
        revocations = FakeRevocations()
        app = create_app(
            settings=GatewaySettings(internal_token="test-internal-token", **overrides),
            upstreams=upstreams,
            revocations=revocations,  # type: ignore[arg-type]
        )
        app.state.verifier = FakeVerifier()
        server = _Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
        )
        task = asyncio.create_task(server.serve())
        servers.append((server, task))

        def started() -> bool:
            assert not task.done(), "gateway stopped during start-up"
            return bool(server.started)

        await eventually(started, within=10, what="the gateway to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        return Gateway(
            url=f"ws://127.0.0.1:{port}{WS_PATH}", stub=stub, revocations=revocations, app=app
        )

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


async def closed_with(socket: websockets.ClientConnection) -> tuple[int, str]:
    """The close code and reason; fails if a message arrives instead or nothing in time."""
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def notification(user_id: int) -> notification_pb2.Notification:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return notification_pb2.Notification(id=1, user_id=user_id, type="mention", created_at=stamp)


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        ("", "unauthenticated"),
        ("?token=garbage", "invalid token"),
        (f"?token={make_token(1, 's', lifetime=-5)}", "token expired"),
    ],
)
async def test_refused_upgrade_is_accepted_then_closed_with_1008(
    start_gateway: Callable[..., Awaitable[Gateway]], suffix: str, reason: str
) -> None:
    gateway = await start_gateway()
    async with websockets.connect(gateway.url + suffix) as socket:  # not an HTTP 403
        assert await closed_with(socket) == (1008, reason)


async def test_socket_is_closed_when_its_token_expires(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await start_gateway(ws_revocation_check_seconds=3600)
    token = make_token(1, "s1", lifetime=1.5)
    async with websockets.connect(f"{gateway.url}?token={token}") as socket:
        assert await closed_with(socket) == (1008, "token expired")


async def test_socket_is_closed_when_its_session_ends(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await start_gateway(ws_revocation_check_seconds=0.05)
    headers = {"Authorization": f"Bearer {make_token(1, 's1')}"}
    async with (
        websockets.connect(gateway.url, additional_headers=headers) as ended,
        websockets.connect(
            gateway.url, additional_headers={"Authorization": f"Bearer {make_token(1, 's2')}"}
        ) as other,
    ):
        gateway.revocations.ended.add("s1")  # logout of that session (recorded by auth)
        assert await closed_with(ended) == (1008, "session ended")
        # The user's other session keeps its socket and its pushes.
        gateway.stub.calls[1].queue.put_nowait(notification(1))
        assert json.loads(await asyncio.wait_for(other.recv(), timeout=10))["type"] == "mention"


async def test_nothing_is_pushed_to_an_ended_session(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await start_gateway(ws_revocation_check_seconds=3600)  # only the push checks
    headers = {"Authorization": f"Bearer {make_token(1, 's1')}"}
    async with websockets.connect(gateway.url, additional_headers=headers) as socket:
        gateway.revocations.ended.add("s1")
        gateway.stub.calls[0].queue.put_nowait(notification(1))
        assert await closed_with(socket) == (1008, "session ended")


async def test_connections_per_user_are_capped(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    gateway = await start_gateway(ws_max_connections_per_user=2)

    def url(user_id: int) -> str:
        return f"{gateway.url}?token={make_token(user_id, f's{user_id}')}"

    async with websockets.connect(url(1)) as first, websockets.connect(url(1)) as second:
        async with websockets.connect(url(1)) as third:
            assert await closed_with(third) == (1008, "too many connections")
        async with websockets.connect(url(2)) as someone_else:
            await asyncio.wait_for(someone_else.ping(), timeout=10)
        for socket in (first, second):
            await asyncio.wait_for(socket.ping(), timeout=10)  # still open
        await first.close()
        # The freed slot is usable again once the gateway has seen the close.
        await eventually(
            lambda: gateway.app.state.ws_connections[1] <= 1, within=10, what="the close seen"
        )
        async with websockets.connect(url(1)) as again:
            gateway.stub.calls[-1].queue.put_nowait(notification(1))
            assert json.loads(await asyncio.wait_for(again.recv(), timeout=10))["user_id"] == 1


async def test_the_query_token_is_redacted_in_uvicorn_lines(
    start_gateway: Callable[..., Awaitable[Gateway]], capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(level="INFO", fmt="json", component="gateway")
    try:
        gateway = await start_gateway()
        token = make_token(1, "s1")
        async with websockets.connect(f"{gateway.url}?token={token}") as socket:
            await asyncio.wait_for(socket.ping(), timeout=10)
        async with websockets.connect(f"{gateway.url}?token=garbage-but-secret") as refused:
            await closed_with(refused)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "[accepted]" in err  # uvicorn's WebSocket line, with the path and its query
    assert token not in err
    assert token.split(".")[1] not in err
    assert "garbage-but-secret" not in err
    assert f"token={REDACTED}" in err


async def test_an_unknowable_session_is_closed_with_1013_not_left_open(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    """Redis and auth both down: neither a handshake nor an open socket stays on trust."""
    gateway = await start_gateway(ws_revocation_check_seconds=0.05)
    headers = {"Authorization": f"Bearer {make_token(1, 's1')}"}
    async with websockets.connect(gateway.url, additional_headers=headers) as open_socket:
        gateway.revocations.unknowable = True
        assert await closed_with(open_socket) == (1013, "session check unavailable")
    async with websockets.connect(gateway.url, additional_headers=headers) as refused:
        assert await closed_with(refused) == (1013, "session check unavailable")


async def test_auth_unreachable_at_the_handshake_is_a_1013_close_not_an_http_error(
    start_gateway: Callable[..., Awaitable[Gateway]],
) -> None:
    """Right after an install the keys may not be fetchable yet: a readable, retryable close."""
    gateway = await start_gateway()
    gateway.app.state.verifier.auth_down = True
    headers = {"Authorization": f"Bearer {make_token(1, 's1')}"}
    async with websockets.connect(gateway.url, additional_headers=headers) as socket:
        assert await closed_with(socket) == (1013, "session check unavailable")
