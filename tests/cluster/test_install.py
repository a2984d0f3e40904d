"""The user's install (docs/kubernetes.md, run word for word) and the journey through it."""

from __future__ import annotations

import asyncio
import json

from tests.cluster.conftest import Installed

COMPONENTS = ("auth", "user", "post", "relation", "notification", "gateway")


def test_every_deployment_available_and_migrations_complete(installed: Installed) -> None:
    cluster = installed.cluster
    deployments = cluster.kubectl_json("get", "deployments", "-n", "default")["items"]
    names = {d["metadata"]["name"] for d in deployments}
    assert {f"pinstack-{c}" for c in COMPONENTS} <= names
    for deployment in deployments:
        conditions = {c["type"]: c["status"] for c in deployment["status"].get("conditions", [])}
        assert conditions.get("Available") == "True", deployment["metadata"]["name"]
    jobs = cluster.kubectl_json("get", "jobs", "-n", "default")["items"]
    migrations = [j for j in jobs if "migrat" in j["metadata"]["name"]]
    assert len(migrations) >= 5, [j["metadata"]["name"] for j in jobs]
    for job in migrations:
        assert job["status"].get("succeeded") == 1, job["metadata"]["name"]
    stack = cluster.kubectl_json("get", "pinstackstack", "pinstack", "-n", "default")
    ready = {c["type"]: c for c in stack["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True", ready


def test_journey_register_login_post_follow_and_push(installed: Installed) -> None:
    api = installed.api

    async def journey() -> None:
        alice = await api.register()
        bob = await api.register()
        await api.login(alice)
        post = await api.request(
            "POST", "/api/v1/posts", json={"title": "hello cluster"}, headers=alice.headers
        )
        assert post.status_code == 201, post.text
        read = await api.request("GET", f"/api/v1/posts/{post.json()['data']['id']}")
        assert read.status_code == 200, read.text
        assert read.json()["data"]["author"]["username"] == alice.username

        # Bob listens on the WebSocket while Alice follows him: the follow's notification crosses
        # relation -> outbox -> Kafka -> notification -> push, all in the cluster.
        ready = asyncio.Event()
        pushes = asyncio.ensure_future(api.receive_pushes(bob, count=1, within=120, ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        follow = await api.request(
            "POST", "/api/v1/relation/follow", json={"followee_id": bob.id}, headers=alice.headers
        )
        assert follow.status_code == 200, follow.text
        received = await pushes
        assert len(received) == 1, received
        assert "follow" in json.dumps(received[0])
        feed = await api.request("GET", "/api/v1/notification/feed", headers=bob.headers)
        assert feed.status_code == 200, feed.text
        assert feed.json()["data"]["total"] == 1

    api.netns.run(journey(), timeout=300)
