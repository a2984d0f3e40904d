"""Leader election on a ``coordination.k8s.io`` Lease: of several replicas, one acts.

Why not kopf's peering: peering ranks operators by ``--priority`` and, when two *equal* ones
meet, pauses **all** of them ("Possibly conflicting operators with the same priority ...
Pausing all operators, including self"), leaving the cluster unserved -- exactly the case of
two replicas of one Deployment. Unequal priorities per pod would need a per-pod setting, an
extra CRD (``KopfPeering``) and still let both act until each sees the other's keep-alive
(kopf documents that there are no per-object locks). A Lease is Kubernetes' own answer
(kube-controller-manager, controller-runtime): equal replicas race for one object, the API
server's optimistic concurrency (``update`` with the read ``resourceVersion``) lets exactly one
win, and the others wait; kopf runs only in the holder.

Timing, as client-go's: the holder renews every ``retry`` seconds and, when it has not managed
to renew for ``renew_deadline`` (< the lease duration), stops acting and exits; a candidate
takes over once the record has not changed for a whole lease duration (measured on its own
monotonic clock, so clock skew between nodes does not matter), or at once when the holder
releases the Lease on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.conditions import Clock, system_clock
from pinstack_operator.kubeapi import ConflictError, KubeApi

__all__ = ["LeadershipLostError", "LeaseElector"]

logger = logging.getLogger(__name__)

_API = "coordination.k8s.io/v1"
_ERRORS = (ApiException, ConflictError, OSError, TimeoutError)


class LeadershipLostError(RuntimeError):
    """The Lease could not be renewed in time: another replica may act now, this one must not."""


def _micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Acquires, renews and releases one Lease as ``identity``."""

    def __init__(
        self,
        *,
        api: KubeApi,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float = 15.0,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._duration = lease_seconds
        self._renew_deadline = lease_seconds * 2 / 3
        self._retry = lease_seconds / 7.5
        self._clock = clock
        self._monotonic = monotonic
        self._observed: Mapping[str, Any] | None = None
        self._observed_at = 0.0
        self.leading = False

    def _observe(self, spec: Mapping[str, Any]) -> None:
        """Remember when the record last changed (on our clock: skew between nodes is moot)."""
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = self._monotonic()

    def _held_by_another(self, spec: Mapping[str, Any]) -> bool:
        holder = spec.get("holderIdentity")
        if not holder or holder == self.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self._duration)
        return self._observed_at + duration > self._monotonic()

    def _record(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        now = _micro_time(self._clock())
        ours = previous.get("holderIdentity") == self.identity
        transitions = int(previous.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self._duration)),
            "acquireTime": previous.get("acquireTime") if ours else now,
            "renewTime": now,
            "leaseTransitions": transitions if ours or not previous else transitions + 1,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        lease = await self._api.find(_API, "Lease", namespace=self._namespace, name=self._name)
        if lease is None:
            manifest = {
                "apiVersion": _API,
                "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": self._record({}),
            }
            try:
                created = await self._api.create(manifest)
            except ConflictError:
                return False  # another replica created it first
            self._observe(created["spec"])
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        if self._held_by_another(spec):
            return False
        lease["spec"] = self._record(spec)
        try:
            replaced = await self._api.replace(lease)
        except ConflictError:
            return False  # it changed since we read it: someone else renewed or took it
        self._observe(replaced["spec"])
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except _ERRORS as error:
            logger.warning("lease %s/%s: %s", self._namespace, self._name, error)
            return False

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease (cancel to give up)."""
        logger.info("waiting for the leader lease %s/%s as %s",
                    self._namespace, self._name, self.identity)  # fmt: skip
        while True:
            if await self._attempt():
                break
            await asyncio.sleep(self._retry)
        self.leading = True
        logger.info("acquired the leader lease %s/%s", self._namespace, self._name)

    async def hold(self) -> None:
        """Renew until a renewal has failed for ``renew_deadline``; then raise
        :class:`LeadershipLostError` (the caller stops acting at once)."""
        renewed = self._monotonic()
        while True:
            await asyncio.sleep(self._retry)
            if await self._attempt():
                renewed = self._monotonic()
            elif self._monotonic() - renewed > self._renew_deadline:
                self.leading = False
                raise LeadershipLostError(
                    f"could not renew the lease {self._namespace}/{self._name} for "
                    f"{self._renew_deadline:.0f} s; stopping so another replica can lead"
                )

    async def release(self) -> None:
        """Hand the Lease over at once (a clean shutdown): empty holder, 1 s duration."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self._api.find(_API, "Lease", namespace=self._namespace, name=self._name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = _micro_time(self._clock())
            lease["spec"] = {**lease["spec"], "holderIdentity": None,
                             "leaseDurationSeconds": 1, "renewTime": now}  # fmt: skip
            await self._api.replace(lease)
        except _ERRORS as error:
            logger.warning("could not release the lease (it expires by itself): %s", error)
        else:
            logger.info("released the leader lease %s/%s", self._namespace, self._name)
