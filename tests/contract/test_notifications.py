"""HTTP contract of the notification routes and the WebSocket push, against the embedded stack."""

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


async def send(
    stack: RunningStack, sender: Account, user_id: object, type: object = "mention", **extra: Any
) -> httpx.Response:
    body = {"user_id": user_id, "type": type, **extra}
    return await stack.client.post(f"{BASE}/send", json=body, headers=sender.headers)


async def wait_for_feed(stack: RunningStack, account: Account, count: int) -> dict[str, Any]:
    async def feed() -> dict[str, Any] | None:
        response = await stack.client.get(f"{BASE}/feed", headers=account.headers)
        data: dict[str, Any] = response.json()["data"]
        return data if data["total"] >= count else None

    # The contract: "well within one second".
    return await eventually(feed, within=1.0, what=f"{count} notifications in the feed")


async def test_follow_creates_follow_created_notification(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    response = await stack.client.post(
        "/api/v1/relation/follow", json={"followee_id": bob.id}, headers=alice.headers
    )
    assert response.status_code == 200
    data = await wait_for_feed(stack, bob, 1)
    assert data["total"] == 1
    (item,) = data["notifications"]
    assert item["type"] == "follow_created"
    assert item["user_id"] == bob.id
    assert item["is_read"] is False
    assert item["payload"] == {"follower_id": alice.id, "followee_id": bob.id}
    assert item["created_at"].endswith("Z")


async def test_send_get_read_delete(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    sent = await send(stack, alice, bob.id, payload={"post_id": 7, "tags": ["a"]})
    assert sent.status_code == 200, sent.text
    data = sent.json()["data"]
    assert data["message"] == "Notification sent successfully"
    nid = data["notification_id"]

    got = await stack.client.get(f"{BASE}/{nid}", headers=bob.headers)
    assert got.status_code == 200
    assert got.json()["data"]["payload"] == {"post_id": 7, "tags": ["a"]}
    assert (await stack.client.get(f"{BASE}/unread-count", headers=bob.headers)).json()["data"] == {
        "count": 1
    }

    for _ in range(2):  # idempotent
        read = await stack.client.put(f"{BASE}/{nid}/read", headers=bob.headers)
        assert read.json() == {
            "status": 200,
            "data": {"success": True, "message": "Notification marked as read"},
        }
    assert (await stack.client.get(f"{BASE}/unread-count", headers=bob.headers)).json()["data"] == {
        "count": 0
    }

    deleted = await stack.client.delete(f"{BASE}/{nid}", headers=bob.headers)
    assert deleted.json() == {
        "status": 200,
        "data": {"success": True, "message": "Notification removed successfully"},
    }
    assert_error(
        await stack.client.delete(f"{BASE}/{nid}", headers=bob.headers),
        404,
        "notification not found",
    )


async def test_send_without_payload_omits_it(stack: RunningStack) -> None:
    alice = await stack.register()
    sent = await send(stack, alice, alice.id)
    nid = sent.json()["data"]["notification_id"]
    item = (await stack.client.get(f"{BASE}/{nid}", headers=alice.headers)).json()["data"]
    # sender_id: an addition, the user who sent it (docs/security.md)
    assert set(item) == {"id", "user_id", "type", "is_read", "created_at", "sender_id"}


async def test_ownership_is_enforced(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    nid = (await send(stack, alice, bob.id)).json()["data"]["notification_id"]
    denied = "access to notification denied"
    assert_error(await stack.client.get(f"{BASE}/{nid}", headers=alice.headers), 403, denied)
    assert_error(await stack.client.put(f"{BASE}/{nid}/read", headers=alice.headers), 403, denied)
    assert_error(await stack.client.delete(f"{BASE}/{nid}", headers=alice.headers), 403, denied)
    missing = "notification not found"
    assert_error(await stack.client.get(f"{BASE}/{10**12}", headers=bob.headers), 404, missing)
    assert_error(await stack.client.put(f"{BASE}/{10**12}/read", headers=bob.headers), 404, missing)
    assert_error(await stack.client.get(f"{BASE}/abc", headers=bob.headers), 400, "invalid input")
    assert_error(await stack.client.get(f"{BASE}/0", headers=bob.headers), 400, "validation failed")
    assert_error(await stack.client.get(f"{BASE}/{nid}"), 401, "unauthenticated")


async def test_feed_pagination_and_read_all(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    ids = [(await send(stack, alice, bob.id, type=f"t{i}")).json()["data"]["notification_id"]
           for i in range(5)]  # fmt: skip
    page = await stack.client.get(
        f"{BASE}/feed", params={"page": 2, "limit": 2}, headers=bob.headers
    )
    data = page.json()["data"]
    assert (data["total"], data["page"], data["limit"], data["total_pages"]) == (5, 2, 2, 3)
    assert [item["id"] for item in data["notifications"]] == [ids[2], ids[1]]
    default = (await stack.client.get(f"{BASE}/feed", headers=bob.headers)).json()["data"]
    assert (default["page"], default["limit"], default["total_pages"]) == (1, 10, 1)

    for _ in range(2):  # idempotent
        response = await stack.client.put(f"{BASE}/read-all", headers=bob.headers)
        assert response.json() == {
            "status": 200,
            "data": {"success": True, "message": "All notifications marked as read"},
        }
    count = await stack.client.get(f"{BASE}/unread-count", headers=bob.headers)
    assert count.json()["data"] == {"count": 0}
    empty = (await stack.client.get(f"{BASE}/feed", headers=alice.headers)).json()["data"]
    assert empty == {"notifications": [], "total": 0, "page": 1, "limit": 10, "total_pages": 0}


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}, {"limit": -1}]
)
async def test_feed_rejects_bad_paging(stack: RunningStack, params: dict[str, str | int]) -> None:
    alice = await stack.register()
    response = await stack.client.get(f"{BASE}/feed", params=params, headers=alice.headers)
    assert_error(response, 400, "invalid input")


async def test_send_errors(stack: RunningStack) -> None:
    alice = await stack.register()
    assert_error(await send(stack, alice, 10**12), 404, "user not found")
    assert_error(await send(stack, alice, alice.id, type=""), 400, "validation failed")
    assert_error(await send(stack, alice, alice.id, type="x" * 65), 400, "validation failed")
    assert_error(await send(stack, alice, 0), 400, "validation failed")
    assert (await send(stack, alice, alice.id, type="x" * 64)).status_code == 200
    response = await stack.client.post(f"{BASE}/send", json={"user_id": alice.id})
    assert_error(response, 401, "unauthenticated")


async def test_user_deletion_removes_notifications_and_follows(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    carol = await stack.register()
    await stack.client.post(
        "/api/v1/relation/follow", json={"followee_id": alice.id}, headers=bob.headers
    )
    await stack.client.post(
        "/api/v1/relation/follow", json={"followee_id": carol.id}, headers=alice.headers
    )
    assert (await wait_for_feed(stack, alice, 1))["total"] == 1
    deleted = await stack.client.delete(f"/api/v1/users/{alice.id}", headers=alice.headers)
    assert deleted.status_code == 204

    async def no_followers() -> bool:
        followers = await stack.client.get(f"/api/v1/relation/{carol.id}/followers")
        return bool(followers.json()["data"]["total"] == 0)

    await eventually(no_followers, within=2, what="carol's followers emptied")
    followees = await stack.client.get(f"/api/v1/relation/{bob.id}/followees")
    assert followees.json()["data"]["total"] == 0


# --- WebSocket -----------------------------------------------------------------------------


def ws_url(stack: RunningStack) -> str:
    return stack.url.replace("http://", "ws://") + f"{BASE}/ws"


async def test_websocket_pushes_new_notifications(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    async with websockets.connect(ws_url(stack), additional_headers=bob.headers) as socket:
        await stack.client.post(
            "/api/v1/relation/follow", json={"followee_id": bob.id}, headers=alice.headers
        )
        first = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
        assert first["type"] == "follow_created"
        assert first["payload"] == {"follower_id": alice.id, "followee_id": bob.id}
        await send(stack, alice, bob.id, type="ping", payload=[1, 2])
        await send(stack, alice, alice.id, type="not-for-bob")
        second = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
        assert (second["type"], second["payload"], second["user_id"]) == ("ping", [1, 2], bob.id)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), timeout=0.3)


async def test_websocket_token_in_query(stack: RunningStack) -> None:
    alice = await stack.register()
    url = f"{ws_url(stack)}?token={alice.access_token}"
    async with websockets.connect(url) as socket:
        await send(stack, alice, alice.id, type="self")
        pushed = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
        assert pushed["type"] == "self"


@pytest.mark.parametrize(
    ("suffix", "reason"), [("", "unauthenticated"), ("?token=garbage", "invalid token")]
)
async def test_websocket_refuses_without_valid_token(
    stack: RunningStack, suffix: str, reason: str
) -> None:
    # Accepted, then closed with 1008 and a reason a browser can read (not an HTTP 403).
    async with websockets.connect(ws_url(stack) + suffix) as socket:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, reason)


async def test_send_is_rate_limited_with_retry_after(stack: RunningStack) -> None:
    alice = await stack.register()
    statuses = [(await send(stack, alice, alice.id)).status_code for _ in range(40)]
    assert 429 in statuses
    limited = await send(stack, alice, alice.id)
    assert_error(limited, 429, "too many requests")
    assert int(limited.headers["Retry-After"]) >= 1
