"""The request mixes: what the load generator sends next, as pre-built HTTP/1.1 bytes.

A workload lives inside one generator process. It is built from a picklable
:class:`WorkloadSpec`; with several generator processes each gets a disjoint share of the users
as actors, so follow/unfollow state never races between processes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rawhttp import build_request

__all__ = ["MIXES", "Planned", "Workload", "WorkloadSpec", "make_workload"]

API = "/api/v1"


@dataclass(frozen=True)
class WorkloadSpec:
    mix: str
    host: str  # Host header value
    users: list[tuple[int, str]]  # (user id, access token)
    post_ids: list[int]
    edges: list[tuple[int, int]]  # seeded follows (undirected): never touched by the write mix
    worker: int = 0
    workers: int = 1
    seed: int = 1


@dataclass
class Planned:
    endpoint: str  # route template: the unit of the report
    raw: bytes
    pair: tuple[int, int] | None = None  # follow/unfollow bookkeeping


@dataclass
class Workload:
    spec: WorkloadSpec
    rng: random.Random
    choices: list[Callable[[], Planned]]
    weights: list[float]
    # Write mix: follows made by the benchmark (eligible for unfollow) and pairs in flight.
    followed: list[tuple[int, int]] = field(default_factory=list)
    taken: set[tuple[int, int]] = field(default_factory=set)
    neighbours: dict[int, set[int]] = field(default_factory=dict)
    actors: list[tuple[int, str]] = field(default_factory=list)
    tokens: dict[int, str] = field(default_factory=dict)
    counter: int = 0

    def next(self) -> Planned:
        return self.rng.choices(self.choices, self.weights)[0]()

    def finished(self, planned: Planned, status: int | None) -> None:
        """Keep the follow graph in step with what the stack answered."""
        if planned.pair is None:
            return
        if planned.endpoint.endswith("/follow"):
            if status == 200:
                self.followed.append(planned.pair)
            elif status is not None:  # refused: the pair is free again
                self.taken.discard(planned.pair)
            # no answer (timeout): unknown state; the pair stays taken, cleanup unfollows it
        elif status is not None:
            self.taken.discard(planned.pair)

    def cleanup(self) -> list[bytes]:
        """Unfollow what the benchmark followed, so every step starts from the seeded graph."""
        pairs = set(self.followed) | self.taken
        self.followed.clear()
        self.taken.clear()
        return [self._unfollow_raw(a, b) for a, b in sorted(pairs)]

    # ------------------------------------------------------------------ read mix

    def _user(self) -> tuple[int, str]:
        return self.rng.choice(self.spec.users)

    def _get(self, endpoint: str, path: str, token: str) -> Planned:
        return Planned(endpoint, build_request("GET", path, host=self.spec.host, token=token))

    def posts_list(self) -> Planned:
        _, token = self._user()
        author, _ = self._user()
        return self._get("GET /posts/list", f"{API}/posts/list?author_id={author}", token)

    def post_get(self) -> Planned:
        _, token = self._user()
        return self._get(
            "GET /posts/{id}", f"{API}/posts/{self.rng.choice(self.spec.post_ids)}", token
        )

    def feed(self) -> Planned:
        _, token = self._user()
        return self._get("GET /notification/feed", f"{API}/notification/feed", token)

    def user_get(self) -> Planned:
        _, token = self._user()
        user, _ = self._user()
        return self._get("GET /users/{id}", f"{API}/users/{user}", token)

    def healthz(self) -> Planned:
        return self._get("GET /healthz", "/healthz", "")

    # ------------------------------------------------------------------ write mix

    def _post(self, path: str, token: str, body: object) -> bytes:
        return build_request(
            "POST", path, host=self.spec.host, token=token, body=json.dumps(body).encode()
        )

    def post_create(self) -> Planned:
        _, token = self.rng.choice(self.actors)
        self.counter += 1
        body = {"title": f"bench write {self.counter}", "content": "load " * 20, "tags": ["bench"]}
        return Planned("POST /posts", self._post(f"{API}/posts", token, body))

    def follow(self) -> Planned:
        for _ in range(20):  # a free pair is found at the first try unless the graph is tiny
            follower, token = self.rng.choice(self.actors)
            followee, _ = self._user()
            pair = (follower, followee)
            if (
                followee == follower
                or followee in self.neighbours.get(follower, ())
                or pair in self.taken
            ):
                continue
            self.taken.add(pair)
            raw = self._post(f"{API}/relation/follow", token, {"followee_id": followee})
            return Planned("POST /relation/follow", raw, pair)
        return self.post_create()

    def _unfollow_raw(self, follower: int, followee: int) -> bytes:
        return self._post(
            f"{API}/relation/unfollow", self.tokens[follower], {"followee_id": followee}
        )

    def unfollow(self) -> Planned:
        if not self.followed:
            return self.follow()
        # swap-remove: O(1) random pick
        index = self.rng.randrange(len(self.followed))
        self.followed[index], self.followed[-1] = self.followed[-1], self.followed[index]
        pair = self.followed.pop()
        return Planned("POST /relation/unfollow", self._unfollow_raw(*pair), pair)

    def notify(self) -> Planned:
        _, token = self.rng.choice(self.actors)
        target, _ = self._user()
        self.counter += 1
        body = {"user_id": target, "type": "bench_ping", "payload": {"seq": self.counter}}
        return Planned(
            "POST /notification/send", self._post(f"{API}/notification/send", token, body)
        )


# mix name -> [(method name, weight)]
MIXES: dict[str, list[tuple[str, float]]] = {
    "read": [("posts_list", 60), ("post_get", 20), ("feed", 10), ("user_get", 10)],
    "write": [("post_create", 40), ("follow", 25), ("unfollow", 25), ("notify", 10)],
    "posts-list": [("posts_list", 1)],
    "healthz": [("healthz", 1)],
}


def make_workload(spec: WorkloadSpec) -> Workload:
    rng = random.Random(spec.seed * 7919 + spec.worker)
    workload = Workload(spec=spec, rng=rng, choices=[], weights=[])
    entries = MIXES[spec.mix]
    workload.choices = [getattr(workload, name) for name, _ in entries]
    workload.weights = [weight for _, weight in entries]
    workload.tokens = dict(spec.users)
    workload.actors = [
        u for i, u in enumerate(spec.users) if i % spec.workers == spec.worker
    ] or spec.users
    for a, b in spec.edges:
        workload.neighbours.setdefault(a, set()).add(b)
        workload.neighbours.setdefault(b, set()).add(a)
    return workload
