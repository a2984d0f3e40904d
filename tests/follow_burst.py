"""A burst of follows with a real process killed in the middle, and the check that follows it.

Shared by the embedded (``pinstack up``) and the distributed (``pinstack dev up``) crash tests:
every follow the API acknowledged must produce its ``follow_created`` notification after the
restart — at least once through the outbox, exactly once in effect through the consumers'
dedupe — whichever process was killed, at whatever moment.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from tests.polling import wait_until

__all__ = ["Account", "assert_delivered_once", "follow_burst", "register"]

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    name: str
    user_id: int
    headers: dict[str, str]


def register(client: httpx.Client) -> Account:
    name = f"u{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    created = client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201, created.text
    return login(client, name)


def login(client: httpx.Client, name: str) -> Account:
    response = client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['data']['access_token']}"}
    me = client.get(f"/api/v1/users/username/{name}")
    assert me.status_code == 200, me.text
    return Account(name=name, user_id=int(me.json()["data"]["id"]), headers=headers)


def follow_burst(
    base_url: str,
    followers: list[Account],
    star: Account,
    *,
    kill_after: int,
    kill: Callable[[], None],
) -> set[int]:
    """Every follower follows ``star``, eight at a time; ``kill()`` runs right after the
    ``kill_after``-th acknowledgement, with follows still in flight. Returns the ids of the
    followers whose follow was acknowledged (200)."""
    acknowledged: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def follow(account: Account) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                response = client.post(
                    "/api/v1/relation/follow",
                    json={"followee_id": star.user_id},
                    headers=account.headers,
                )
        except httpx.HTTPError:
            return  # the process died under this request: not acknowledged
        if response.status_code != 200:
            return
        with lock:
            acknowledged.add(account.user_id)
            if len(acknowledged) >= kill_after and not killed.is_set():
                killed.set()
                kill()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(follow, followers))
    assert killed.is_set(), f"only {len(acknowledged)} follows acknowledged; nothing was killed"
    return acknowledged


def assert_delivered_once(
    base_url: str, star: Account, acknowledged: set[int], *, within: float = 120.0
) -> None:
    """Poll the star's feed until every acknowledged follow's notification is there; no
    follower's may appear twice."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        headers = login(client, star.name).headers  # a fresh token: the old run may be gone
        missing = set(acknowledged)

        def all_notified() -> bool:
            response = client.get(
                "/api/v1/notification/feed", params={"limit": 100}, headers=headers
            )
            if response.status_code == 503:
                # A restarted service: the gateway's channel reconnects within its backoff.
                return False
            assert response.status_code == 200, response.text
            seen = Counter(
                int(item["payload"]["follower_id"])
                for item in response.json()["data"]["notifications"]
                if item["type"] == "follow_created"
            )
            duplicates = {follower for follower, count in seen.items() if count > 1}
            assert not duplicates, f"notified more than once for followers {duplicates}"
            missing.intersection_update(acknowledged - set(seen))
            return not missing

        wait_until(
            all_notified,
            within=within,
            interval=0.2,
            what=lambda: (
                f"the notifications of {len(acknowledged)} acknowledged follows; "
                f"{len(missing)} never came: followers {sorted(missing)}"
            ),
        )
