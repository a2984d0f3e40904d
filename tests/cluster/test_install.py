"""The user's install (docs/kubernetes.md, run word for word) and the journey through it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cluster.conftest import COMPONENTS, Installed


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
        async with api.socket(bob) as socket:
            follow = await api.request(
                "POST", "/api/v1/relation/follow", json={"followee_id": bob.id},
                headers=alice.headers,
            )  # fmt: skip
            assert follow.status_code == 200, follow.text
            received = await socket.collect(count=1, within=120)
        assert len(received) == 1, received
        assert "follow" in json.dumps(received[0])
        feed = await api.request("GET", "/api/v1/notification/feed", headers=bob.headers)
        assert feed.status_code == 200, feed.text
        assert feed.json()["data"]["total"] == 1

    api.netns.run(journey(), timeout=300)


def test_operator_runs_under_its_own_least_privilege_service_account(installed: Installed) -> None:
    cluster = installed.cluster
    pod = cluster.kubectl_json(
        "get", "pods", "-n", "pinstack-system", "-l", "app.kubernetes.io/name=pinstack-operator"
    )["items"][0]
    account = pod["spec"]["serviceAccountName"]
    assert account != "default"
    subject = f"system:serviceaccount:pinstack-system:{account}"

    def can(*args: str) -> bool:
        out = cluster.kubectl("auth", "can-i", f"--as={subject}", *args, check=False)
        return out.strip() == "yes"

    stacks = "pinstackstacks.pinstack.io"
    assert can("update", stacks, "--subresource=finalizers", "-n", "default")
    assert can("patch", stacks, "--subresource=status", "-n", "default")
    assert not can("delete", stacks, "-n", "default")
    assert can("create", "jobs", "-n", "default")
    assert can("get", "secrets", "-n", "default")
    assert not can("list", "secrets", "--all-namespaces")
    assert not can("watch", "secrets", "--all-namespaces")
    assert not can("create", "clusterrolebindings")
    assert not can("delete", "nodes")


def test_the_cluster_is_confined_to_its_network_namespace(installed: Installed) -> None:
    cluster = installed.cluster
    layout = cluster.layout
    routes = cluster.netns.run(["ip", "route", "show"]).stdout
    assert "default" not in routes, routes  # nothing outside the namespace is reachable
    assert layout.service_cidr in routes
    # Pods have no way out either: their only gateway is the namespace's own bridge.
    inside = cluster.netns.run(["iptables-save"]).stdout
    assert "KUBE-SERVICES" in inside
    outside = subprocess.run(
        ["iptables-save"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "KUBE-" not in outside
    assert "CNI-" not in outside
    for link in (layout.node_bridge, layout.pod_bridge):
        assert not Path("/sys/class/net", link).exists(), link
