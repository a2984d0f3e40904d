"""The client's ``X-Request-Id`` is kept only when it can travel on as gRPC metadata.

Found by probing beside the property tests: ``X-Request-Id: é`` (one latin-1 byte) was bound
as is, gRPC refused it as metadata, and the request hung past its RPC deadline.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pinstack_common.observability.logging import current_request_id
from pinstack_gateway.middleware import GatewayMiddleware


async def _bound(_request: Request) -> PlainTextResponse:
    return PlainTextResponse(current_request_id() or "")


def _client() -> httpx.AsyncClient:
    app = GatewayMiddleware(Starlette(routes=[Route("/", _bound)]), max_body_bytes=1024)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.mark.parametrize("sent", ["é".encode("latin-1"), "ü-1".encode(), b"\x7f", b"id\x80"])
async def test_an_id_grpc_cannot_carry_is_replaced_by_a_fresh_one(sent: bytes) -> None:
    async with _client() as client:
        response = await client.get("/", headers={b"X-Request-Id": sent})
    assert re.fullmatch(r"[0-9a-f]{32}", response.text), response.text
    assert response.headers["x-request-id"] == response.text


@pytest.mark.parametrize("sent", ["req-123", "a b:c/d=e", "x" * 128])
async def test_a_printable_ascii_id_is_kept(sent: str) -> None:
    async with _client() as client:
        response = await client.get("/", headers={"X-Request-Id": sent})
    assert response.text == sent
    assert response.headers["x-request-id"] == sent
