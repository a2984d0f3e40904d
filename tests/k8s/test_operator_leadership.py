"""Two operator replicas against a real API server: only the Lease holder reconciles, and the
other takes over when it stops (at once on a clean stop; after the lease duration when the
holder just goes silent). Both run as the chart's ServiceAccount with the chart's RBAC."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.config import OperatorConfig
from pinstack_operator.kubeapi import ConflictError, KubeApi, connect, load_configuration
from pinstack_operator.leadership import LeadershipLostError, LeaseElector
from pinstack_operator.main import run_operator
from pinstack_operator.metrics import OperatorMetrics
from pinstack_operator.rbac import PERMISSIONS
from tests.polling import eventually

from .conftest import OPERATOR_NAMESPACE, StackFactory

LEASE_SECONDS = 10.0


class Replica:
    """One operator replica in its own thread and event loop, with its own metrics."""

    def __init__(self, *, identity: str, config: OperatorConfig) -> None:
        self.identity = identity
        self.config = config
        self.metrics = OperatorMetrics()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=f"operator-{identity}", daemon=True)

    def _run(self) -> None:
        try:
            run = run_operator(
                config=self.config,
                metrics=self.metrics,
                stop_flag=self.stop_flag,
                ready_flag=self.ready_flag,
            )
            asyncio.run(run)
        except BaseException as error:  # noqa: BLE001 - surfaced by the test
            self.errors.append(error)

    def reconciles(self) -> float:
        return sum(
            sample.value
            for family in self.metrics.registry.collect()
            for sample in family.samples
            if sample.name == "pinstack_operator_reconciles_total"
        )

    def leading(self) -> bool:
        return self.metrics.registry.get_sample_value("pinstack_operator_leader") == 1

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread.ident is not None:  # started
            self.thread.join(60)


@pytest.fixture
def replicas(
    operator_identity: tuple[str, Path], stacks_namespace: StackFactory
) -> Iterator[dict[str, Replica]]:
    _, kubeconfig = operator_identity
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    started = {
        name: Replica(
            identity=name,
            config=OperatorConfig(
                kubeconfig=str(kubeconfig),
                namespaces=(stacks_namespace.namespace,),
                resync_seconds=3.0,
                retry_seconds=1.0,
                leader_election=True,
                lease_namespace=OPERATOR_NAMESPACE,
                lease_name=lease,
                lease_seconds=LEASE_SECONDS,
                identity=name,
            ),
        )
        for name in ("a", "b")
    }
    yield started
    for replica in started.values():
        replica.stop()


@pytest.fixture
async def stacks_namespace(api: KubeApi, postgres: Any, kafka: Any) -> StackFactory:
    """A namespace for this test's stacks, without the session's operator."""
    factory = StackFactory(api=api, postgres=postgres, kafka=kafka)
    await factory.prepare()

    async def custom_resources_served() -> bool:
        # A just-established CRD's storage may still answer 429 "(re)initializing"; the
        # operator would retry after kopf's backoff, longer than this test waits.
        kinds = [("monitoring.coreos.com/v1", "ServiceMonitor"),
                 ("monitoring.coreos.com/v1", "PrometheusRule"),
                 ("pinstack.io/v1alpha1", "PinstackStack")]  # fmt: skip
        try:
            for api_version, kind in kinds:
                await api.list(api_version, kind, namespace=factory.namespace)
        except ApiException:
            return False
        return True

    await eventually(custom_resources_served, within=60, what="custom resources served")
    return factory


async def _holder(api: KubeApi, replica: Replica) -> str | None:
    lease = await api.find("coordination.k8s.io/v1", "Lease", namespace=OPERATOR_NAMESPACE,
                           name=replica.config.lease_name)  # fmt: skip
    return None if lease is None else (lease.get("spec") or {}).get("holderIdentity")


def _stack(stacks: StackFactory, *, tag: str) -> dict[str, Any]:
    return stacks.manifest(
        image={"repository": "registry.local/pinstack", "tag": tag},
        services=[{"name": "gateway"}],
        topics=[],
        monitoring={"enabled": False},
    )


async def _observed(stacks: StackFactory, generation: int) -> bool:
    stack = await stacks.get()
    status = (stack or {}).get("status") or {}
    return status.get("observedGeneration") == generation and status.get("phase") == "Ready"


async def test_only_the_lease_holder_reconciles_and_the_other_takes_over(
    replicas: dict[str, Replica], stacks_namespace: StackFactory, api: KubeApi
) -> None:
    a, b = replicas["a"], replicas["b"]
    stacks = stacks_namespace
    a.thread.start()
    assert await asyncio.to_thread(a.ready_flag.wait, 60), a.errors
    b.thread.start()
    assert await eventually(lambda: _holder(api, a), what="the Lease") == "a"

    await api.apply(_stack(stacks, tag="1.0.0"))
    await eventually(lambda: _observed(stacks, 1), within=60, what="stack Ready, generation 1")
    await api.apply(_stack(stacks, tag="1.0.1"))
    await eventually(lambda: _observed(stacks, 2), within=60, what="stack Ready, generation 2")
    # Several drift passes have run by now: all of them in a, none in b.
    await eventually(lambda: a.reconciles() >= 3, within=30, what="a's drift passes")
    assert a.leading()
    assert not b.leading()
    assert b.reconciles() == 0
    assert not b.ready_flag.is_set()  # b's kopf never started

    # A clean stop hands the Lease over at once (no lease duration to wait out).
    await asyncio.to_thread(a.stop)
    assert not a.thread.is_alive()
    assert not a.errors, a.errors
    assert await asyncio.to_thread(b.ready_flag.wait, 30), b.errors
    assert await _holder(api, b) == "b"
    await api.apply(_stack(stacks, tag="1.0.2"))
    await eventually(lambda: _observed(stacks, 3), within=60, what="b reconciles generation 3")
    # The status is written inside the pass, the count after it: wait for the count.
    await eventually(lambda: b.reconciles() >= 1, within=30, what="b's passes counted")
    assert b.leading()


async def test_a_silent_holder_loses_the_lease_after_its_duration(
    operator_identity: tuple[str, Path],
) -> None:
    """A holder that stops renewing (a crashed pod) is replaced once the record has not
    changed for a whole lease duration, not before; concurrent candidates: exactly one wins."""
    _, kubeconfig = operator_identity
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    apis = [
        connect(await load_configuration(kubeconfig=str(kubeconfig)), permissions=PERMISSIONS)
        for _ in range(3)
    ]
    crashed, *candidates = [
        LeaseElector(
            api=api, namespace=OPERATOR_NAMESPACE, name=lease, identity=name, lease_seconds=3.0
        )
        for api, name in zip(apis, ("crashed", "c1", "c2"), strict=True)
    ]
    try:
        assert await crashed.try_acquire_or_renew()
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Both candidates race; the holder never renews again.
        winners = await asyncio.wait_for(_first_acquirer(candidates), timeout=30)
        waited = loop.time() - started
        assert waited >= 3.0, waited  # not before the lease duration
        assert len(winners) == 1
        (winner,) = winners
        loser = next(c for c in candidates if c is not winner)
        assert not await loser.try_acquire_or_renew()  # held, and renewed just now
        assert await winner.try_acquire_or_renew()
    finally:
        for api in apis:
            await api.close()


async def _first_acquirer(candidates: list[LeaseElector]) -> list[LeaseElector]:
    tasks = {asyncio.create_task(c.acquire()): c for c in candidates}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [tasks[task] for task in done]


async def test_a_leader_that_cannot_renew_stops_acting_and_exits(
    replicas: dict[str, Replica], api: KubeApi
) -> None:
    """Someone else holds the Lease (here: written over by an admin, and kept fresh): the
    leader's renewals fail, and within the renew deadline it stops kopf and exits with
    LeadershipLostError (its pod restarts as a candidate) rather than act beside another."""
    a = replicas["a"]
    a.thread.start()
    assert await asyncio.to_thread(a.ready_flag.wait, 60), a.errors
    assert a.leading()

    async def intrude() -> None:
        while True:
            name = a.config.lease_name
            lease = await api.get(
                "coordination.k8s.io/v1", "Lease", namespace=OPERATOR_NAMESPACE, name=name
            )
            lease["spec"] |= {"holderIdentity": "intruder",
                              "renewTime": _now_micro()}  # fmt: skip
            with contextlib.suppress(ConflictError):  # a renewed in between: overwrite again
                await api.replace(lease)
            await asyncio.sleep(0.5)

    intruder = asyncio.create_task(intrude())
    try:
        await asyncio.to_thread(a.thread.join, LEASE_SECONDS * 2)
        assert not a.thread.is_alive()
    finally:
        intruder.cancel()
    assert [type(error) for error in a.errors] == [LeadershipLostError]
    assert not a.leading()
    assert await _holder(api, a) == "intruder"  # it did not release what it no longer held


def _now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
