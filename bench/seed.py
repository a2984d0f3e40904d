"""Seed the social graph through the public API: users, follows (each edge both ways), posts.

    python bench/seed.py [--scale 0.1] [--posts-per-user 10]

Restartable: what is known about each user (id, refresh token) is saved after every stage in
``bench/results/seed-<stack>.json``; a rerun refreshes saved sessions instead of logging in
(Argon2 makes a login cost as much as a registration), registers the rest and logs in on
"username already exists". Follows answering 409 and users already holding their posts are
skipped, so a rerun after a crash finishes the job and a rerun after success is cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from stack import Stack, ensure_stack

__all__ = ["BenchUser", "Population", "ensure_fresh_tokens", "load_edges", "seed"]

RESULTS = Path(__file__).resolve().parent / "results"
# ../shared/bench beside the checkout (as laid out for sessions and CI); overridable.
EDGES = Path(
    os.environ.get("PINSTACK_BENCH_EDGES")
    or Path(__file__).resolve().parents[2] / "shared" / "bench" / "socfb-Reed98.edges"
)
FULL_USERS = 962
PASSWORD = "benchpass123"  # noqa: S105 - throwaway accounts on a dev stack
TAGS = ("travel", "food", "music", "art", "tech", "sport", "books", "film")
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "pinstack",
    "serves",
    "posts",
    "fast",
]


@dataclass
class BenchUser:
    node: int  # vertex of the graph file
    user_id: int = 0
    access_token: str = ""
    refresh_token: str = ""

    @property
    def username(self) -> str:
        return f"reed{self.node:03d}"

    @property
    def email(self) -> str:
        return f"reed{self.node:03d}@bench.example.com"

    def token_expires_at(self) -> float:
        """The ``exp`` claim of the access token (0 if there is none)."""
        try:
            payload = self.access_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return float(claims["exp"])
        except (IndexError, ValueError, KeyError):
            return 0.0


@dataclass
class Population:
    """What the load generator needs to know about the seeded graph."""

    users: list[BenchUser]
    edges: list[tuple[int, int]]  # undirected, as user ids
    post_ids: list[int] = field(default_factory=list)

    @property
    def user_ids(self) -> list[int]:
        return [u.user_id for u in self.users]


def load_edges(users: int) -> list[tuple[int, int]]:
    """The graph's undirected edges among the vertices ``0 .. users-1``."""
    edges = []
    for line in EDGES.read_text().splitlines():
        a, b = (int(x) for x in line.split())
        if a < users and b < users and a != b:
            edges.append((a, b))
    return edges


class Progress:
    """One line every couple of seconds: make output stays readable and shows the rate."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.errors = 0
        self.started = time.monotonic()
        self._last = 0.0

    def tick(self, *, error: bool = False) -> None:
        self.done += 1
        self.errors += error
        now = time.monotonic()
        if now - self._last >= 2.0 or self.done == self.total:
            self._last = now
            rate = self.done / max(now - self.started, 1e-6)
            print(
                f"    {self.label}: {self.done}/{self.total} ({rate:.0f}/s, {self.errors} errors)",
                flush=True,
            )


class Api:
    """httpx with retries for what load makes transient (5xx, 429, dropped connections)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(
        self, method: str, path: str, *, token: str = "", body: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(5):
            try:
                reply = await self.client.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if reply.status_code == 429:
                await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
                continue
            if reply.status_code < 500 or attempt == 4:
                return reply
            await asyncio.sleep(0.2 * 2**attempt)
        return reply


async def _bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def _take_tokens(user: BenchUser, reply: httpx.Response) -> None:
    data = reply.json()["data"]
    user.access_token = data["access_token"]
    user.refresh_token = data["refresh_token"]
    claims = data["access_token"].split(".")[1]
    user.user_id = int(
        json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]
    )


async def _sign_in(api: Api, user: BenchUser) -> bool:
    """Refresh a saved session, else register, else log in. True when the user has tokens."""
    if user.refresh_token:
        reply = await api.call("POST", "/auth/refresh", body={"refresh_token": user.refresh_token})
        if reply.status_code == 200:
            _take_tokens(user, reply)
            return True
    reply = await api.call(
        "POST",
        "/auth/register",
        body={"username": user.username, "email": user.email, "password": PASSWORD},
    )
    if reply.status_code == 409:
        reply = await api.call(
            "POST", "/auth/login", body={"login": user.username, "password": PASSWORD}
        )
    if reply.status_code in (200, 201):
        _take_tokens(user, reply)
        return True
    print(f"    {user.username}: {reply.status_code} {reply.text[:200]}")
    return False


def _state_path(stack: Stack) -> Path:
    return RESULTS / f"seed-{stack.stack_id}.json"


def _load_state(stack: Stack) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(_state_path(stack).read_text())
    except (OSError, ValueError):
        state = {}
    state.setdefault("users", {})
    state.setdefault("stages", {})
    return state


def _save_state(stack: Stack, state: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    tmp = _state_path(stack).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(_state_path(stack))


def _save_users(stack: Stack, state: dict[str, Any], users: Iterable[BenchUser]) -> None:
    for user in users:
        state["users"][str(user.node)] = asdict(user)
    _save_state(stack, state)


async def _follow_all(api: Api, users: list[BenchUser], edges: list[tuple[int, int]]) -> int:
    progress = Progress("follows", 2 * len(edges))
    failures = 0

    def job(follower: BenchUser, followee: BenchUser) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal failures
            reply = await api.call(
                "POST", "/relation/follow", token=follower.access_token,
                body={"followee_id": followee.user_id},
            )  # fmt: skip
            bad = reply.status_code not in (200, 409)  # 409: followed by an earlier run
            failures += bad
            progress.tick(error=bad)

        return run

    pairs = [(users[a], users[b]) for a, b in edges] + [(users[b], users[a]) for a, b in edges]
    await _bounded(24, (job(f, t) for f, t in pairs))
    return failures


def _post_body(rng: random.Random, user: BenchUser, k: int) -> dict[str, Any]:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
    return {
        "title": f"{user.username} post {k}",
        "content": words,
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
    }


async def _posts_of(api: Api, user: BenchUser) -> list[int]:
    reply = await api.call("GET", f"/posts/list?author_id={user.user_id}&limit=100")
    reply.raise_for_status()
    return [p["id"] for p in reply.json()["data"]["posts"]]


async def _post_all(api: Api, users: list[BenchUser], per_user: int) -> tuple[list[int], int]:
    """Top every user up to ``per_user`` posts; returns every post id of the population."""
    existing: dict[int, list[int]] = {}
    listing = Progress("post inventory", len(users))

    def lister(user: BenchUser) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            existing[user.node] = await _posts_of(api, user)
            listing.tick()

        return run

    await _bounded(16, (lister(u) for u in users))
    missing = [(u, k) for u in users for k in range(len(existing[u.node]), per_user)]
    progress = Progress("posts", len(missing))
    created: list[int] = []
    failures = 0

    def creator(user: BenchUser, k: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal failures
            rng = random.Random(user.node * 1000 + k)  # same content on every run
            reply = await api.call(
                "POST", "/posts", token=user.access_token, body=_post_body(rng, user, k)
            )
            if reply.status_code == 201:
                created.append(reply.json()["data"]["id"])
            else:
                failures += 1
            progress.tick(error=reply.status_code != 201)

        return run

    if missing:
        await _bounded(16, (creator(u, k) for u, k in missing))
    else:
        print(f"    posts: every user already has {per_user}")
    ids = [i for found in existing.values() for i in found] + created
    return ids, failures


async def seed(stack: Stack, *, scale: float = 1.0, posts_per_user: int = 10) -> Population:
    """Bring the stack to the seeded state (idempotent) and return the population."""
    count = max(2, min(FULL_USERS, math.ceil(FULL_USERS * scale)))
    edges_by_node = load_edges(count)
    state = _load_state(stack)
    users = [BenchUser(node=n, **_saved(state, n)) for n in range(count)]
    started = time.monotonic()
    print(
        f"==> seeding {count} users, {2 * len(edges_by_node)} follows, {posts_per_user} posts each"
    )
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=stack.api, timeout=30.0, limits=limits) as client:
        api = Api(client)
        progress = Progress("users", count)
        failed: list[BenchUser] = []

        def signer(user: BenchUser) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                ok = await _sign_in(api, user)
                if not ok:
                    failed.append(user)
                progress.tick(error=not ok)

            return run

        # Argon2 is CPU-bound in the auth service: more than a few at once only adds queueing.
        await _bounded(6, (signer(u) for u in users))
        _save_users(stack, state, users)
        if failed:
            raise SystemExit(f"{len(failed)} users could not sign in; see the lines above")

        stage = f"follows-{count}"
        if state["stages"].get(stage):
            print(f"    follows: done by an earlier run ({stage})")
        else:
            failures = await _follow_all(api, users, edges_by_node)
            if failures:
                raise SystemExit(f"{failures} follows failed; rerun to retry them")
            state["stages"][stage] = True
            _save_state(stack, state)

        post_ids, failures = await _post_all(api, users, posts_per_user)
        if failures:
            raise SystemExit(f"{failures} posts failed; rerun to retry them")
    print(f"==> seeded in {time.monotonic() - started:.1f}s")
    ids = {u.node: u.user_id for u in users}
    return Population(
        users=users, edges=[(ids[a], ids[b]) for a, b in edges_by_node], post_ids=sorted(post_ids)
    )


def _saved(state: dict[str, Any], node: int) -> dict[str, Any]:
    saved = dict(state["users"].get(str(node), {}))
    saved.pop("node", None)
    return saved


async def ensure_fresh_tokens(stack: Stack, population: Population, *, valid_for: float) -> None:
    """Refresh every access token that would expire within ``valid_for`` seconds.

    Access tokens live 15 minutes; a full run is longer, and an expired token turns every
    feed request into a 401 that would be counted as the stack's error.
    """
    deadline = time.time() + valid_for
    stale = [u for u in population.users if u.token_expires_at() < deadline]
    if not stale:
        return
    state = _load_state(stack)
    async with httpx.AsyncClient(base_url=stack.api, timeout=30.0) as client:
        api = Api(client)

        def refresher(user: BenchUser) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                if not await _sign_in(api, user):
                    raise SystemExit(f"could not refresh the session of {user.username}")

            return run

        await _bounded(16, (refresher(u) for u in stale))
    _save_users(stack, state, population.users)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the 962 users (and their edges)"
    )
    parser.add_argument("--posts-per-user", type=int, default=10)
    args = parser.parse_args()
    stack = ensure_stack()
    population = asyncio.run(seed(stack, scale=args.scale, posts_per_user=args.posts_per_user))
    follows, posts = 2 * len(population.edges), len(population.post_ids)
    print(f"users {len(population.users)}, follows {follows}, posts {posts}")


if __name__ == "__main__":
    main()
