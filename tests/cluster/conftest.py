"""The cluster tier: a real single-node Kubernetes cluster (see ``pinstack_devinfra.cluster``)
with Pinstack installed on it exactly as docs/kubernetes.md tells a user.

One cluster per session (and per machine). Nothing here skips: a machine that cannot run the
cluster fails the tier with what is missing. Every client runs inside the cluster's network
namespace: processes through ``cluster.kubectl``/``cluster.helm``/``cluster.netns.command``,
Python clients on ``cluster.netns_thread``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pinstack_devinfra.cluster.monitoring import install_monitoring
from pinstack_devinfra.cluster.node import Cluster, unwind_on_signals
from pinstack_devinfra.cluster.prepare import Prepared, prepare
from tests.cluster.api import Account, ApiClient
from tests.cluster.load import LoadReport, SteadyLoad

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "kubernetes.md"
APP_TAG = "0.1.0"
COMPONENTS = ("auth", "user", "post", "relation", "notification", "gateway")


def docs_block(marker: str) -> str:
    """The fenced shell block that follows ``<!-- cluster-tier:<marker> -->`` in the docs."""
    text = DOCS.read_text()
    match = re.search(
        rf"<!-- cluster-tier:{marker} -->\s*```(?:bash|sh)\n(.*?)```", text, re.DOTALL
    )
    if match is None:
        raise AssertionError(f"docs/kubernetes.md has no block marked cluster-tier:{marker}")
    return match.group(1)


def run_docs_block(
    cluster: Cluster, script: str, *, timeout: float = 1800, env: dict[str, str] | None = None
) -> str:
    """Run a docs shell block inside the cluster's network, from the repository root, with
    ``kubectl`` and ``helm`` on PATH talking to the cluster as its admin."""
    tools = cluster.layout.state_dir / "tools"
    tools.mkdir(exist_ok=True)
    for name, target in (("kubectl", cluster.kubectl_path), ("helm", cluster.helm_path)):
        link = tools / name
        if not link.exists():
            link.symlink_to(target)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}",
           "KUBECONFIG": str(cluster.kubeconfig), **cluster.helm_env, **(env or {})}  # fmt: skip
    result = subprocess.run(
        cluster.netns.command(["bash", "-euo", "pipefail", "-c", script]),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"docs block failed ({result.returncode}):\n{script}\n--- stdout\n"
            f"{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result.stdout


@dataclass
class Installed:
    """Pinstack as installed by the docs' steps; what the tests share."""

    cluster: Cluster
    prepared: Prepared
    api: ApiClient
    config: pytest.Config

    def report(self, line: str) -> None:
        """A measurement line shown in the run's output as it happens (CI logs keep it)."""
        with _uncaptured(self.config):
            print(f"\n[cluster-tier] {line}")  # noqa: T201 - the report is this method's job

    def shell(self, script: str, *, env: dict[str, str] | None = None) -> str:
        return run_docs_block(self.cluster, script, env=env)


@contextlib.contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    """Let progress lines of the long steps (builds, cluster start, install) reach the
    terminal while they happen, instead of only on failure."""
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        yield


@pytest.fixture(scope="session")
def prepared(pytestconfig: pytest.Config) -> Prepared:
    with _uncaptured(pytestconfig):
        return prepare(repo=REPO, app_tag=APP_TAG)


@pytest.fixture(scope="session")
def cluster(prepared: Prepared, pytestconfig: pytest.Config) -> Iterator[Cluster]:
    with unwind_on_signals():  # a terminated run still restores the machine (below)
        if os.environ.get("PINSTACK_CLUSTER_ATTACH"):
            # Iterating on tests: reuse `python -m pinstack_devinfra.cluster up` (and its install).
            with Cluster(image_archives=prepared.image_archives).attached() as running:
                yield running
            return
        running = Cluster(image_archives=prepared.image_archives)
        with _uncaptured(pytestconfig):
            running.__enter__()  # stops what it started itself if starting fails
        try:
            yield running
        finally:
            with _uncaptured(pytestconfig):
                running.__exit__(None, None, None)


@pytest.fixture(scope="session")
def installed(
    cluster: Cluster, prepared: Prepared, pytestconfig: pytest.Config
) -> Iterator[Installed]:
    started = time.monotonic()
    try:
        # A user's cluster runs kube-prometheus-stack before Pinstack arrives: the chart then
        # renders its ServiceMonitors and rules (the default monitoring path).
        install_monitoring(cluster)
        already = cluster.helm("status", "pinstack", check=False)
        if not (os.environ.get("PINSTACK_CLUSTER_ATTACH") and already):
            run_docs_block(cluster, docs_block("install"))
        # The gateway's Service as another pod reaches it (cluster IP, kube-proxy).
        ip = cluster.kubectl(
            "get", "service", "pinstack-gateway", "-o", "jsonpath={.spec.clusterIP}"
        )
        api = ApiClient(base_url=f"http://{ip}:8080", netns=cluster.netns_thread)
        api.wait_until_serving(timeout=300)
    except BaseException:
        print(diagnostics(cluster))  # noqa: T201 - the failure's context, shown by pytest
        raise
    state = Installed(cluster=cluster, prepared=prepared, api=api, config=pytestconfig)
    state.report(f"docs install to a working API: {time.monotonic() - started:.0f}s")
    yield state
    api.close()


def diagnostics(cluster: Cluster) -> str:
    """Pods (with restarts), recent events, the stacks, and the recent logs of every Pinstack
    container, including a restarted one's previous run: what a failure on CI needs."""
    parts = [cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False)]
    parts.append(
        cluster.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False)[-6000:]
    )
    parts.append(cluster.kubectl("get", "pinstackstacks", "-A", "-o", "yaml", check=False)[-4000:])
    pods = cluster.kubectl(
        "get", "pods", "-n", "default", "-l", "app.kubernetes.io/part-of=pinstack", "-o", "name",
        check=False,
    ).split()  # fmt: skip
    for pod in pods:
        for previous in ("--previous=false", "--previous=true"):
            logs = cluster.kubectl("logs", "-n", "default", pod, "--all-containers", previous,
                                   "--tail=40", check=False)  # fmt: skip
            if logs.strip():
                parts.append(f"--- {pod} {previous}\n{logs[-4000:]}")
    return "\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed cluster test carries the cluster's state in its report (a section of its own)."""
    report = yield
    if report.failed and call.when == "call" and "tests/cluster/" in str(item.fspath):
        installed = item.funcargs.get("installed") if hasattr(item, "funcargs") else None
        if isinstance(installed, Installed):
            report.sections.append(("cluster diagnostics", diagnostics(installed.cluster)))
    return report


# The order the modules run in: the install first; monitoring next (its burn-rate windows are
# quickest to move while little good traffic has been seen); the reclaim tests (a scratch stack
# of their own) last; the upgrade after the self-healing test, which expects the first release.
MODULE_ORDER = (
    "test_install", "test_monitoring", "test_resilience", "test_upgrade", "test_reclaim",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cluster tests wait on real rollouts: a longer per-test ceiling than the suite's default
    (the first test also pays for the install). Every wait inside polls with its own deadline."""
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.timeout(2400))

    def rank(item: pytest.Item) -> int:
        module = Path(str(item.fspath)).stem
        if "tests/cluster/" not in str(item.fspath) or module not in MODULE_ORDER:
            return -1
        return MODULE_ORDER.index(module)

    items.sort(key=rank)


@dataclass
class Fixtures:
    """A user with a post: what the steady load reads."""

    account: Account
    post_id: int


@pytest.fixture(scope="session")
def load_fixtures(installed: Installed) -> Fixtures:
    async def make() -> Fixtures:
        account = await installed.api.register()
        post = await installed.api.request(
            "POST", "/api/v1/posts", json={"title": "under load"}, headers=account.headers
        )
        assert post.status_code == 201, post.text
        return Fixtures(account=account, post_id=post.json()["data"]["id"])

    return installed.api.netns.run(make(), timeout=60)


@contextlib.contextmanager
def steady_load(
    installed: Installed, fixtures: Fixtures, *, rate: float = 10
) -> Iterator[SteadyLoad]:
    """Run a :class:`SteadyLoad` for the duration of the block; its report when it ends."""
    load = SteadyLoad(installed.api, account=fixtures.account, post_id=fixtures.post_id,
                      rate=rate)  # fmt: skip
    running = installed.api.netns.submit(load.run())
    try:
        yield load
    finally:
        load.stop()
        running.result(timeout=60)


def rollout_under_load(
    installed: Installed,
    fixtures: Fixtures,
    *,
    what: str,
    change: Callable[[], object],
    settle: int = 20,
) -> LoadReport:
    """Make ``change`` under a steady load, wait until every Deployment is rolled out again,
    keep the load on the new pods for ``settle`` more requests, report, return the load's count."""
    with steady_load(installed, fixtures) as load:
        load.wait_for_requests(20)
        started = time.monotonic()
        change()
        wait_rollout(installed.cluster)
        rolled_out = time.monotonic() - started
        load.wait_for_requests(settle)
    report = load.report
    installed.report(
        f"{what} under load: {report.requests} requests, {len(report.failures)} failed; "
        f"every Deployment rolled out {rolled_out:.0f}s after the change"
    )
    return report


def wait_rollout(cluster: Cluster, namespace: str = "default", *, timeout: int = 600) -> None:
    """Every Deployment in ``namespace`` fully rolled out (all replicas updated and ready)."""
    for deployment in cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name").split():
        cluster.kubectl("rollout", "status", "-n", namespace, deployment,
                        f"--timeout={timeout}s", timeout=timeout + 10)  # fmt: skip
