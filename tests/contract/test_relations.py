"""HTTP contract of the relation routes (http-api.md), against the running embedded stack."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.conftest import RunningStack


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


async def follow(
    stack: RunningStack, headers: dict[str, str], followee_id: object
) -> httpx.Response:
    return await stack.client.post(
        "/api/v1/relation/follow", json={"followee_id": followee_id}, headers=headers
    )


async def test_follow_then_lists_show_both_sides(stack: RunningStack) -> None:
    alice = await stack.register(avatar_url="https://example.com/a.png")
    bob = await stack.register()
    response = await follow(stack, alice.headers, bob.id)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": 200, "data": {"message": "Followed successfully"}}

    followers = await stack.client.get(f"/api/v1/relation/{bob.id}/followers")
    assert followers.status_code == 200
    assert followers.json()["data"] == {
        "followers": [
            {"id": alice.id, "username": alice.username, "avatar_url": "https://example.com/a.png"}
        ],
        "total": 1,
        "page": 1,
        "limit": 20,
    }
    followees = await stack.client.get(f"/api/v1/relation/{alice.id}/followees")
    assert followees.json()["data"] == {
        "followees": [{"id": bob.id, "username": bob.username}],
        "total": 1,
        "page": 1,
        "limit": 20,
    }


async def test_follow_errors(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    assert_error(await follow(stack, alice.headers, alice.id), 400, "cannot follow yourself")
    assert_error(await follow(stack, alice.headers, 0), 400, "validation failed")
    assert_error(await follow(stack, alice.headers, -3), 400, "validation failed")
    assert_error(await follow(stack, alice.headers, "x"), 400, "invalid input")
    assert_error(await follow(stack, alice.headers, 10**12), 404, "user not found")
    assert (await follow(stack, alice.headers, bob.id)).status_code == 200
    assert_error(await follow(stack, alice.headers, bob.id), 409, "already following this user")
    assert_error(await follow(stack, {}, bob.id), 401, "unauthenticated")
    assert_error(
        await follow(stack, {"Authorization": "Bearer nonsense"}, bob.id), 401, "invalid token"
    )


async def test_unfollow(stack: RunningStack) -> None:
    alice = await stack.register()
    bob = await stack.register()
    url = "/api/v1/relation/unfollow"
    assert_error(
        await stack.client.post(url, json={"followee_id": bob.id}, headers=alice.headers),
        404,
        "follow relation not found",
    )
    assert_error(
        await stack.client.post(url, json={"followee_id": alice.id}, headers=alice.headers),
        400,
        "cannot unfollow yourself",
    )
    assert_error(
        await stack.client.post(url, json={"followee_id": 0}, headers=alice.headers),
        400,
        "validation failed",
    )
    assert (await follow(stack, alice.headers, bob.id)).status_code == 200
    response = await stack.client.post(url, json={"followee_id": bob.id}, headers=alice.headers)
    assert response.json() == {"status": 200, "data": {"message": "Unfollowed successfully"}}
    followers = await stack.client.get(f"/api/v1/relation/{bob.id}/followers")
    assert followers.json()["data"]["total"] == 0
    # Following again after an unfollow works.
    assert (await follow(stack, alice.headers, bob.id)).status_code == 200


async def test_lists_paginate_newest_first(stack: RunningStack) -> None:
    star = await stack.register()
    fans = [await stack.register() for _ in range(5)]
    for fan in fans:
        assert (await follow(stack, fan.headers, star.id)).status_code == 200
    seen: list[int] = []
    for page in (1, 2, 3):
        response = await stack.client.get(
            f"/api/v1/relation/{star.id}/followers", params={"page": page, "limit": 2}
        )
        data = response.json()["data"]
        assert (data["total"], data["page"], data["limit"]) == (5, page, 2)
        seen += [user["id"] for user in data["followers"]]
    assert seen == [fan.id for fan in reversed(fans)]


@pytest.mark.parametrize("which", ["followers", "followees"])
async def test_list_errors(stack: RunningStack, which: str) -> None:
    assert_error(
        await stack.client.get(f"/api/v1/relation/{10**12}/{which}"), 404, "user not found"
    )
    assert_error(await stack.client.get(f"/api/v1/relation/abc/{which}"), 400, "invalid input")
    assert_error(await stack.client.get(f"/api/v1/relation/0/{which}"), 400, "validation failed")
    user = await stack.register()
    for params in ({"limit": 101}, {"limit": 0}, {"page": 0}):
        assert_error(
            await stack.client.get(f"/api/v1/relation/{user.id}/{which}", params=params),
            400,
            "validation failed",
        )
    assert_error(
        await stack.client.get(f"/api/v1/relation/{user.id}/{which}", params={"page": "x"}),
        400,
        "invalid input",
    )
    empty = await stack.client.get(f"/api/v1/relation/{user.id}/{which}")
    assert empty.json()["data"] == {which: [], "total": 0, "page": 1, "limit": 20}
