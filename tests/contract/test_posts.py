"""HTTP contract of the post routes (http-api.md, Posts), against the running embedded stack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.conftest import Account, RunningStack
from tests.polling import eventually

POSTS = "/api/v1/posts"


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


def media(position: int, name: str = "a.png", kind: str = "image") -> dict[str, Any]:
    return {"url": f"https://cdn.example.com/{name}", "type": kind, "position": position}


async def create(stack: RunningStack, account: Account, **body: Any) -> dict[str, Any]:
    response = await stack.client.post(
        POSTS, json={"title": "a title", **body}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# --- create -------------------------------------------------------------------------------------


async def test_create_answers_201_with_flat_author_fields(stack: RunningStack) -> None:
    alice = await stack.register(full_name="Alice Liddell", bio="down the hole")
    response = await stack.client.post(
        POSTS,
        json={
            "title": "Hello",
            "content": "First post",
            "tags": [" Travel ", "travel", "Food"],
            "media_items": [media(2, "b.png"), media(1, "a.mp4", "video"), media(2, "c.png")],
        },
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == 201
    data = body["data"]
    assert data["title"] == "Hello"
    assert data["content"] == "First post"
    assert data["author_id"] == alice.id
    assert data["author_username"] == alice.username
    assert data["author_email"] == alice.email
    assert data["author_full_name"] == "Alice Liddell"
    assert data["author_bio"] == "down the hole"
    assert "author_avatar_url" not in data
    assert [m["url"].rsplit("/", 1)[1] for m in data["media"]] == ["a.mp4", "b.png", "c.png"]
    assert {"id", "url", "type", "position"} == set(data["media"][0])
    assert [t["name"] for t in data["tags"]] == ["Travel", "Food"]
    assert data["created_at"].endswith("Z")
    assert "author" not in data


async def test_create_omits_empty_optional_fields(stack: RunningStack) -> None:
    alice = await stack.register()
    data = await create(stack, alice)
    assert not {"content", "media", "tags", "author_full_name", "author_bio"} & set(data)


async def test_create_requires_a_token(stack: RunningStack) -> None:
    assert_error(await stack.client.post(POSTS, json={"title": "x"}), 401, "unauthenticated")
    response = await stack.client.post(
        POSTS, json={"title": "x"}, headers={"Authorization": "Bearer nonsense"}
    )
    assert_error(response, 401, "invalid token")


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 256},
        {"title": "t", "content": "x" * 10_001},
        {"title": "t", "tags": ["x" * 51]},
        {"title": "t", "tags": [""]},
        {"title": "t", "media_items": [media(1, kind="gif")]},
        {"title": "t", "media_items": [media(0)]},
        {"title": "t", "media_items": [media(10)]},
        {"title": "t", "media_items": [{"url": "not a url", "type": "image", "position": 1}]},
        {"title": "t", "media_items": [media(1, "x" * 512)]},
        {"title": "t", "media_items": [media(1)] * 10},
    ],
)
async def test_create_rejects_rule_breaking_input(
    stack: RunningStack, body: dict[str, Any]
) -> None:
    alice = await stack.register()
    response = await stack.client.post(POSTS, json=body, headers=alice.headers)
    assert_error(response, 400, "validation failed")


async def test_create_limits_are_inclusive(stack: RunningStack) -> None:
    alice = await stack.register()
    data = await create(
        stack,
        alice,
        title="x" * 255,
        content="y" * 10_000,
        tags=["z" * 50],
        media_items=[media(9, "m" * (512 - len("https://cdn.example.com/")))] * 9,
    )
    assert len(data["media"]) == 9


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"title": 5}', b'{"title": "t", "media_items": [{"position": "one"}]}'],
)
async def test_create_rejects_unparseable_bodies(stack: RunningStack, raw: bytes) -> None:
    alice = await stack.register()
    response = await stack.client.post(
        POSTS, content=raw, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid input")


# --- get ----------------------------------------------------------------------------------------


async def test_get_nests_a_public_author_summary(stack: RunningStack) -> None:
    alice = await stack.register(full_name="Alice", avatar_url="https://img.example.com/a.png")
    created = await create(stack, alice, media_items=[media(3, "z.png"), media(1, "y.png")])
    response = await stack.client.get(f"{POSTS}/{created['id']}")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["author"] == {
        "id": alice.id,
        "username": alice.username,
        "full_name": "Alice",
        "avatar_url": "https://img.example.com/a.png",
    }
    assert [m["position"] for m in data["media"]] == [1, 3]
    assert data["created_at"] == created["created_at"]
    assert "author_id" not in data


async def test_get_errors(stack: RunningStack) -> None:
    assert_error(await stack.client.get(f"{POSTS}/999999999"), 404, "post not found")
    assert_error(await stack.client.get(f"{POSTS}/abc"), 400, "invalid input")
    assert_error(await stack.client.get(f"{POSTS}/0"), 400, "validation failed")


# --- update -------------------------------------------------------------------------------------


async def test_update_replaces_present_fields_and_clears_empty_lists(stack: RunningStack) -> None:
    alice = await stack.register()
    created = await create(stack, alice, content="old", tags=["keep"], media_items=[media(1)])
    url = f"{POSTS}/{created['id']}"
    await stack.client.get(url)  # warm the cache: the update must not be hidden by it
    response = await stack.client.put(
        url, json={"title": "new title", "tags": []}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["title"] == "new title"
    assert data["content"] == "old"
    assert "tags" not in data
    assert len(data["media"]) == 1
    assert data["author"]["id"] == alice.id
    fetched = (await stack.client.get(url)).json()["data"]
    assert fetched["title"] == "new title"
    assert "tags" not in fetched
    response = await stack.client.put(
        url, json={"media_items": [], "content": ""}, headers=alice.headers
    )
    assert not {"media", "content"} & set(response.json()["data"])


async def test_update_errors(stack: RunningStack) -> None:
    alice, bob = await stack.register(), await stack.register()
    created = await create(stack, alice)
    url = f"{POSTS}/{created['id']}"
    assert_error(await stack.client.put(url, json={"title": "x"}), 401, "unauthenticated")
    assert_error(
        await stack.client.put(url, json={"title": "x"}, headers=bob.headers), 403, "forbidden"
    )
    assert_error(
        await stack.client.put(f"{POSTS}/999999999", json={"title": "x"}, headers=alice.headers),
        404,
        "post not found",
    )
    assert_error(
        await stack.client.put(url, json={"title": ""}, headers=alice.headers),
        400,
        "validation failed",
    )
    assert_error(
        await stack.client.put(f"{POSTS}/abc", json={"title": "x"}, headers=alice.headers),
        400,
        "invalid input",
    )


# --- delete -------------------------------------------------------------------------------------


async def test_delete_by_the_author(stack: RunningStack) -> None:
    alice, bob = await stack.register(), await stack.register()
    created = await create(stack, alice)
    url = f"{POSTS}/{created['id']}"
    assert_error(await stack.client.delete(url), 401, "unauthenticated")
    assert_error(await stack.client.delete(url, headers=bob.headers), 403, "forbidden")
    response = await stack.client.delete(url, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"status": 200}
    assert_error(await stack.client.get(url), 404, "post not found")
    assert_error(await stack.client.delete(url, headers=alice.headers), 404, "post not found")
    assert_error(
        await stack.client.delete(f"{POSTS}/x", headers=alice.headers), 400, "invalid input"
    )


# --- list ---------------------------------------------------------------------------------------


async def test_list_filters_newest_first_and_total_counts_every_match(stack: RunningStack) -> None:
    alice, bob = await stack.register(), await stack.register()
    tag = f"Tag{alice.id}"
    ids = [
        (await create(stack, alice, title=f"p{index}", tags=[tag] if index % 2 else []))["id"]
        for index in range(5)
    ]
    await create(stack, bob, tags=[tag.lower()])
    response = await stack.client.get(
        f"{POSTS}/list", params={"author_id": alice.id, "limit": 2, "offset": 1}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["total"] == 5
    assert [post["id"] for post in data["posts"]] == ids[::-1][1:3]
    assert data["posts"][0]["author"]["username"] == alice.username
    tagged = (await stack.client.get(f"{POSTS}/list", params={"tag": tag.upper()})).json()["data"]
    assert tagged["total"] == 3
    both = await stack.client.get(f"{POSTS}/list", params={"tag": tag, "author_id": alice.id})
    assert both.json()["data"]["total"] == 2


async def test_list_time_range(stack: RunningStack) -> None:
    alice = await stack.register()
    await create(stack, alice)
    since: dict[str, str | int] = {"author_id": alice.id, "created_after": "2000-01-01T00:00:00Z"}
    assert (await stack.client.get(f"{POSTS}/list", params=since)).json()["data"]["total"] == 1
    later: dict[str, str | int] = {
        "author_id": alice.id,
        "created_after": "2999-01-01T00:00:00+02:00",
    }
    assert (await stack.client.get(f"{POSTS}/list", params=later)).json()["data"] == {
        "posts": [],
        "total": 0,
    }
    before: dict[str, str | int] = {"author_id": alice.id, "created_before": "2000-01-01T00:00:00Z"}
    assert (await stack.client.get(f"{POSTS}/list", params=before)).json()["data"]["total"] == 0


async def test_list_is_bounded_by_default(stack: RunningStack) -> None:
    alice = await stack.register()
    for index in range(21):
        await create(stack, alice, title=f"p{index}")
    data = (await stack.client.get(f"{POSTS}/list", params={"author_id": alice.id})).json()
    assert len(data["data"]["posts"]) == 20
    assert data["data"]["total"] == 21


@pytest.mark.parametrize(
    "params",
    [
        {"offset": -1},
        {"limit": 101},
        {"limit": 0},
        {"limit": -5},
        {"author_id": 0},
        {"created_after": "yesterday"},
        {"created_before": "2024-01-01"},
        {"created_after": "2024-13-01T00:00:00Z"},
        {"tag": "x" * 51},
    ],
)
async def test_list_rejects_out_of_range_values(
    stack: RunningStack, params: dict[str, Any]
) -> None:
    assert_error(await stack.client.get(f"{POSTS}/list", params=params), 400, "validation failed")


async def test_list_rejects_unparseable_numbers(stack: RunningStack) -> None:
    response = await stack.client.get(f"{POSTS}/list", params={"author_id": "abc"})
    assert_error(response, 400, "invalid input")


# --- authors ------------------------------------------------------------------------------------


async def test_profile_changes_show_in_posts(stack: RunningStack) -> None:
    alice = await stack.register()
    created = await create(stack, alice)
    url = f"{POSTS}/{created['id']}"
    assert "avatar_url" not in (await stack.client.get(url)).json()["data"]["author"]
    response = await stack.client.put(
        "/api/v1/users/avatar",
        json={"avatar_url": "https://img.example.com/new.png"},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    # UserUpdated reaches the post service through the outbox and the bus, and clears the cache.

    async def new_avatar() -> bool:
        author = (await stack.client.get(url)).json()["data"]["author"]
        return bool(author.get("avatar_url") == "https://img.example.com/new.png")

    await eventually(new_avatar, within=5, what="the post's author with the new avatar")


async def test_deleted_author_posts_disappear_and_lists_keep_working(stack: RunningStack) -> None:
    alice, bob = await stack.register(), await stack.register()
    tag = f"gone{bob.id}"
    bobs = await create(stack, bob, tags=[tag])
    await create(stack, alice, tags=[tag])
    response = await stack.client.delete(f"/api/v1/users/{bob.id}", headers=bob.headers)
    assert response.status_code == 204, response.text
    # The list never fails while UserDeleted is on its way; then bob's posts are gone for good.

    async def one_left() -> httpx.Response | None:
        listed = await stack.client.get(f"{POSTS}/list", params={"tag": tag})
        assert listed.status_code == 200, listed.text
        return listed if listed.json()["data"]["total"] == 1 else None

    listed = await eventually(one_left, within=5, what="bob's posts gone from the list")
    assert [post["author"]["id"] for post in listed.json()["data"]["posts"]] == [alice.id]
    assert listed.json()["data"]["total"] == 1
    assert_error(await stack.client.get(f"{POSTS}/{bobs['id']}"), 404, "post not found")
