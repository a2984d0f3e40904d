"""Hardening at the edge, end to end over the embedded stack: forged notifications, sender shown,
WebSocket session rules. See docs/security.md."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.contract.conftest import Account, RunningStack
from tests.polling import eventually

BASE = "/api/v1/notification"


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


async def send(stack: RunningStack, sender: Account, user_id: int, type: str) -> httpx.Response:
    body = {"user_id": user_id, "type": type, "payload": {"follower_id": sender.id}}
    return await stack.client.post(f"{BASE}/send", json=body, headers=sender.headers)


# --- who can send what ---------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["follow_created", "FOLLOW_CREATED"])
async def test_users_cannot_forge_system_notifications(stack: RunningStack, forged: str) -> None:
    mallory = await stack.register()
    victim = await stack.register()
    assert_error(await send(stack, mallory, victim.id, forged), 400, "validation failed")
    feed = await stack.client.get(f"{BASE}/feed", headers=victim.headers)
    assert feed.json()["data"]["total"] == 0


async def test_sender_is_shown_on_sent_notifications_only(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    sent = await send(stack, alice, bob.id, "mention")
    assert sent.status_code == 200, sent.text
    nid = sent.json()["data"]["notification_id"]
    item = (await stack.client.get(f"{BASE}/{nid}", headers=bob.headers)).json()["data"]
    assert item["sender_id"] == alice.id
    followed = await stack.client.post(
        "/api/v1/relation/follow", json={"followee_id": bob.id}, headers=alice.headers
    )
    assert followed.status_code == 200, followed.text

    async def by_kind() -> dict[str, dict[str, Any]]:
        feed = (await stack.client.get(f"{BASE}/feed", headers=bob.headers)).json()["data"]
        kinds = {n["type"]: n for n in feed["notifications"]}
        return kinds if "follow_created" in kinds else {}

    kinds = await eventually(by_kind, within=2, what="the follow_created notification")
    assert "sender_id" not in kinds["follow_created"]
    assert kinds["mention"]["sender_id"] == alice.id


# --- WebSocket sessions --------------------------------------------------------------------


async def test_websocket_closes_after_logout(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    url = stack.url.replace("http://", "ws://") + f"{BASE}/ws"
    async with websockets.connect(url, additional_headers=bob.headers) as socket:
        assert (await send(stack, alice, bob.id, "before")).status_code == 200
        assert json.loads(await asyncio.wait_for(socket.recv(), timeout=5))["type"] == "before"
        out = await stack.client.post(
            "/api/v1/auth/logout", json={"refresh_token": bob.refresh_token}
        )
        assert out.status_code == 200, out.text
        assert (await send(stack, alice, bob.id, "after")).status_code == 200
        # The push after logout is not delivered: the socket is closed (at the latest by the
        # periodic check), and nothing but the close arrives.
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=15)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "session ended")
    # And a new socket with the ended session's token is refused the same way.
    async with websockets.connect(url, additional_headers=bob.headers) as refused:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as again:
            await asyncio.wait_for(refused.recv(), timeout=5)
    assert again.value.rcvd is not None
    assert again.value.rcvd.code == 1008
