"""Slow clients are cut off by the gateway's read deadlines (issue 13, item 15).

A request head or body trickled a byte at a time used to hold its connection for as long as
the client liked. Here the deadlines are 1 s; each test waits for the server to close with a
generous bound (``CUT_WITHIN``) and asserts no exact timing. Normal keep-alive clients and
upgraded WebSockets are not touched by the deadlines.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import h11
import pytest
import websockets

from pinstack_gateway.websocket import WS_PATH
from tests.integration.gateway_stack import GatewayStack, gateway_stack

DEADLINE = 1.0  # both deadlines, in this test's stack
CUT_WITHIN = 20.0  # the server must have closed by then: far past the deadline, far short of ∞


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayStack]:
    async with gateway_stack(
        tmp_path_factory.mktemp("slow"),
        http_header_timeout_seconds=DEADLINE,
        http_body_timeout_seconds=DEADLINE,
    ) as running:
        yield running


async def connect(stack: GatewayStack) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = stack.gateway.url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def trickle_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    """Send ``data`` a byte at a time, a byte every 50 ms, and return what the server answered
    once it closed. Fails if ``data`` runs out or ``CUT_WITHIN`` passes first."""
    answered = b""
    give_up = time.monotonic() + CUT_WITHIN
    for byte in data:
        assert time.monotonic() < give_up, "the server still holds the slow connection"
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(4096), timeout=0.05)
        except TimeoutError:
            continue
        except ConnectionError:
            break
        if not chunk:
            break
        answered += chunk
    else:
        pytest.fail("the whole slow request was sent without the server closing")
    writer.close()
    return answered


async def test_a_request_head_sent_byte_by_byte_is_cut_off(stack: GatewayStack) -> None:
    reader, writer = await connect(stack)
    # A head that never ends: more header lines than CUT_WITHIN lets through at 20 bytes/s.
    head = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" + b"X-Slow: a\r\n" * 100
    answered = await trickle_until_closed(reader, writer, head)
    assert answered == b""  # closed, not answered: there was no request to answer


async def test_a_body_sent_byte_by_byte_is_cut_off(stack: GatewayStack) -> None:
    reader, writer = await connect(stack)
    body = json.dumps({"login": "slow", "password": "x" * 1000}).encode()
    head = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    writer.write(head)  # the head in time; the body then a byte at a time
    answered = await trickle_until_closed(reader, writer, body)
    assert answered == b""  # the app saw a disconnect mid-body: nobody to answer


async def request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    conn: h11.Connection,
    event: h11.Request,
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One request on an open connection (the head in two pieces), its status and body."""
    data = conn.send(event) + (conn.send(h11.Data(data=body)) if body else b"")
    data += conn.send(h11.EndOfMessage())
    writer.write(data[:10])
    await writer.drain()
    writer.write(data[10:])
    status, received = 0, b""
    while True:
        incoming = conn.next_event()
        if incoming is h11.NEED_DATA:
            conn.receive_data(await asyncio.wait_for(reader.read(65536), timeout=10))
        elif isinstance(incoming, h11.Response):
            status = incoming.status_code
        elif isinstance(incoming, h11.Data):
            received += incoming.data
        elif isinstance(incoming, h11.EndOfMessage):
            conn.start_next_cycle()
            return status, received
        else:
            pytest.fail(f"unexpected {incoming!r}")


async def test_a_keep_alive_client_is_unaffected(stack: GatewayStack) -> None:
    """Several requests on one connection, over longer than the deadlines: none is cut."""
    reader, writer = await connect(stack)
    conn = h11.Connection(h11.CLIENT)
    body = json.dumps({"login": "nobody-here", "password": "wrong password"}).encode()
    health = h11.Request(method="GET", target="/healthz", headers=[("Host", "gateway")])
    login = h11.Request(
        method="POST",
        target="/api/v1/auth/login",
        headers=[
            ("Host", "gateway"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ],
    )
    started = time.monotonic()
    answers: list[tuple[int, bytes]] = []
    while time.monotonic() - started < 3 * DEADLINE or len(answers) < 6:
        answers.append(await request(reader, writer, conn, health))
        answers.append(await request(reader, writer, conn, login, body))
        # Idle between requests, well within uvicorn's keep-alive (5 s) but summing past the
        # deadlines: only a clock that wrongly ran across requests would cut the connection.
        await asyncio.sleep(DEADLINE / 2)
    assert {status for status, _ in answers[::2]} == {200}
    assert {status for status, _ in answers[1::2]} == {404}  # unknown login: a real answer
    writer.close()


async def test_an_upgraded_websocket_is_not_cut(stack: GatewayStack) -> None:
    token = await stack.register()
    url = stack.gateway.url.replace("http://", "ws://") + WS_PATH
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers, ping_interval=None) as socket:
        # Quiet for several times both deadlines: the socket stays open (no close, no message).
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), timeout=4 * DEADLINE)
        pong = await socket.ping()
        await asyncio.wait_for(pong, timeout=10)
