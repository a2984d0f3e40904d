"""Monitoring for real: the Prometheus Operator (``pinstack_devinfra.cluster.monitoring``, the
tier's stand-in for kube-prometheus-stack) scrapes Pinstack, evaluates its rules and dashboards'
queries, and its alerts reach an Alertmanager webhook this test listens on.

The test shortens only what the chart exposes (scrape interval, per-alert ``for:`` windows) and
rolls the release back to the installed revision at the end, so the modules after it see the
install as the docs left it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinstack_devinfra.cluster.monitoring import (
    MONITORING_NAMESPACE,
    PROMETHEUS_SERVICE,
    wait_for_monitoring,
)
from tests.cluster.conftest import COMPONENTS, REPO, Fixtures, Installed, steady_load
from tests.cluster.prom import PrometheusApi, Webhook, poll

NAMESPACE = "default"
STACK = "pinstack"
RULES = yaml.safe_load((REPO / "alerts" / "pinstack.rules.yaml").read_text())
# What the test shortens, through the chart's values only.
SCRAPE_INTERVAL, SCRAPE_TIMEOUT = (
    "5s",
    "4s",
)  # the operator skips a monitor whose timeout > interval
WINDOWS = {"PinstackTargetDown": "1m", "PinstackGatewayAvailabilityBurnRateFast": "1m"}
# Dashboard variables, as Grafana would expand them for this stack.
DASHBOARD_VARIABLES = {"$namespace": NAMESPACE, "$__rate_interval": "1m", "$__range": "1h"}


@dataclass
class Monitoring:
    prometheus: PrometheusApi
    webhook: Webhook


def _chart_upgrade(installed: Installed, *settings: str) -> None:
    args = " ".join(f"--set {setting}" for setting in settings)
    installed.shell(f"helm upgrade pinstack charts/pinstack --reuse-values {args} --wait")


@pytest.fixture(scope="module")
def monitoring(installed: Installed) -> Iterator[Monitoring]:
    cluster = installed.cluster
    wait_for_monitoring(cluster)
    revision = json.loads(cluster.helm("status", "pinstack", "-o", "json"))["version"]
    windows = [f"monitoring.prometheusRule.for.{name}={value}" for name, value in WINDOWS.items()]
    _chart_upgrade(
        installed,
        f"monitoring.serviceMonitor.interval={SCRAPE_INTERVAL}",
        f"monitoring.serviceMonitor.scrapeTimeout={SCRAPE_TIMEOUT}",
        *windows,
    )
    ip = cluster.kubectl("get", "service", PROMETHEUS_SERVICE, "-n", MONITORING_NAMESPACE,
                         "-o", "jsonpath={.spec.clusterIP}")  # fmt: skip
    prometheus = PrometheusApi(base_url=f"http://{ip}:9090", netns=cluster.netns_thread)
    poll("Prometheus answering", lambda: True if prometheus.ready() else None, timeout=300)
    try:
        with Webhook(netns=cluster.netns_thread).listening() as webhook:
            yield Monitoring(prometheus=prometheus, webhook=webhook)
    finally:
        cluster.helm("rollback", "pinstack", str(revision), "--wait", timeout=900)


# ---------------------------------------------------------------------------------- ownership


def _monitoring_objects(installed: Installed) -> dict[tuple[str, str], str]:
    """(kind, name) -> manager of every ServiceMonitor and PrometheusRule in the namespace."""
    found: dict[tuple[str, str], str] = {}
    for kind in ("servicemonitors", "prometheusrules"):
        for item in installed.cluster.kubectl_json("get", kind, "-n", NAMESPACE)["items"]:
            labels = item["metadata"].get("labels", {})
            found[(kind, item["metadata"]["name"])] = labels.get("app.kubernetes.io/managed-by", "")
    return found


def _scraped_pods(monitoring: Monitoring) -> Counter[tuple[str, str]]:
    """(component, pod) -> how many targets scrape it: one each when monitoring has one owner."""
    return Counter(
        (target["labels"]["job"], target["labels"].get("pod", ""))
        for target in monitoring.prometheus.targets()
        if target["labels"].get("namespace") == NAMESPACE
        and target["labels"].get("job") in COMPONENTS
    )


def _path_settled(installed: Installed, manager: str) -> dict[tuple[str, str], str] | None:
    objects = _monitoring_objects(installed)
    monitors = [name for (kind, name), by in objects.items() if kind == "servicemonitors"]
    every_one_ours = set(objects.values()) == {manager}
    return objects if every_one_ours and len(monitors) == len(COMPONENTS) else None


def _stack_monitoring(installed: Installed, *, enabled: bool) -> None:
    patch = json.dumps({"spec": {"monitoring": {"enabled": enabled}}})
    installed.cluster.kubectl("patch", "pinstackstack", STACK, "-n", NAMESPACE, "--type=merge",
                              "-p", patch)  # fmt: skip


def test_each_monitor_and_rule_has_one_owner_on_either_path(
    installed: Installed, monitoring: Monitoring
) -> None:
    # The default: the chart owns monitoring (kube-prometheus-stack was there before Pinstack).
    chart = poll("the chart's monitoring", lambda: _path_settled(installed, "Helm"), timeout=60)
    assert len(chart) == len(COMPONENTS) + 1, chart
    try:
        # Switching the operator's on as well: it steps aside for what the chart renders.
        _stack_monitoring(installed, enabled=True)

        def stepped_aside() -> str | None:
            stack = installed.cluster.kubectl_json("get", "pinstackstack", STACK, "-n", NAMESPACE)
            conditions = {c["type"]: c for c in stack.get("status", {}).get("conditions", [])}
            reason = conditions.get("MonitoringReady", {}).get("reason")
            return reason if reason == "OwnedByChart" else None

        poll("MonitoringReady=False/OwnedByChart", stepped_aside, timeout=180)
        assert _monitoring_objects(installed) == chart
        # The explicit switch: the chart's monitoring off, the operator's on.
        _chart_upgrade(installed, "monitoring.serviceMonitor.enabled=false",
                       "monitoring.prometheusRule.enabled=false")  # fmt: skip
        operator = poll(
            "the operator's monitoring",
            lambda: _path_settled(installed, "pinstack-operator"),
            timeout=180,
        )
        assert len(operator) == len(COMPONENTS) + 1, operator
        assert not set(operator) & set(chart)  # names never collide
        _wait_every_component_up(monitoring)
        assert {job for job, _ in _scraped_pods(monitoring)} == set(COMPONENTS)
    finally:
        _chart_upgrade(installed, "monitoring.serviceMonitor.enabled=true",
                       "monitoring.prometheusRule.enabled=true")  # fmt: skip
        _stack_monitoring(installed, enabled=False)
    assert poll("the chart's monitoring again", lambda: _path_settled(installed, "Helm"),
                timeout=180) == chart  # fmt: skip


# ---------------------------------------------------------------------------------- targets

# Labels the rules and dashboards select or group by, on every Pinstack target.
TARGET_LABELS = ("job", "namespace", "pod", "instance", "app_kubernetes_io_part_of")


def _wait_every_component_up(monitoring: Monitoring) -> list[dict[str, Any]]:
    def all_up() -> list[dict[str, Any]] | None:
        series = monitoring.prometheus.query('up{app_kubernetes_io_part_of="pinstack"} == 1')
        up = {s["metric"].get("job") for s in series if s["metric"].get("namespace") == NAMESPACE}
        return series if up >= set(COMPONENTS) else None

    return poll("every component's target up", all_up, timeout=180)


def test_every_component_is_scraped_and_up_with_the_labels_rules_use(
    installed: Installed, monitoring: Monitoring, load_fixtures: Fixtures
) -> None:
    series = _wait_every_component_up(monitoring)
    for one in series:
        labels = one["metric"]
        assert set(TARGET_LABELS) <= set(labels), labels
        assert labels["app_kubernetes_io_part_of"] == "pinstack", labels
    # One read per service, so each has served an RPC; their series carry the component label
    # the rules group by (the gateway's HTTP series are per namespace: one gateway per stack).
    account = load_fixtures.account
    for path in (f"/api/v1/users/{account.id}", f"/api/v1/posts/{load_fixtures.post_id}",
                 f"/api/v1/relation/{account.id}/followers"):  # fmt: skip
        assert installed.api.call("GET", path).status_code == 200, path
    unread = installed.api.call("GET", "/api/v1/notification/unread-count",
                                headers=account.headers)  # fmt: skip
    assert unread.status_code == 200, unread.text
    query = f'group by (component) (pinstack_grpc_server_requests_total{{namespace="{NAMESPACE}"}})'
    services = set(COMPONENTS) - {"gateway"}

    def every_service() -> bool | None:
        found = {s["metric"].get("component") for s in monitoring.prometheus.query(query)}
        return True if found >= services else None

    poll("every service's RPC series", every_service, timeout=120)
    scraped = _scraped_pods(monitoring)
    assert all(count == 1 for count in scraped.values()), scraped


# ---------------------------------------------------------------------------------- alerts


def test_target_down_fires_when_a_component_is_scaled_to_zero_and_resolves(
    installed: Installed, monitoring: Monitoring
) -> None:
    cluster, deployment = installed.cluster, "deployment/pinstack-notification"
    replicas = cluster.kubectl("get", deployment, "-o", "jsonpath={.spec.replicas}")
    _wait_every_component_up(monitoring)
    started = time.monotonic()
    cluster.kubectl("scale", deployment, "--replicas=0")
    try:
        fired = monitoring.webhook.wait_for("PinstackTargetDown", "firing", since=started,
                                            timeout=600, job="notification")  # fmt: skip
    finally:
        restored = time.monotonic()
        cluster.kubectl("scale", deployment, f"--replicas={replicas}")
        cluster.kubectl("rollout", "status", deployment, "--timeout=300s", timeout=310)
    resolved = monitoring.webhook.wait_for("PinstackTargetDown", "resolved", since=restored,
                                           timeout=600, job="notification")  # fmt: skip
    installed.report(
        f"PinstackTargetDown (for {WINDOWS['PinstackTargetDown']}, scrape {SCRAPE_INTERVAL}): "
        f"fired {fired:.0f}s after scaling notification to zero, resolved {resolved:.0f}s "
        "after scaling it back"
    )


def _psql(installed: Installed, sql: str) -> str:
    return installed.cluster.kubectl("exec", "-n", "pinstack-infra", "postgresql-0", "--",
                                     "psql", "-U", "postgres", "-Atc", sql)  # fmt: skip


def test_availability_burn_rate_fires_while_a_database_refuses_and_resolves(
    installed: Installed, monitoring: Monitoring, load_fixtures: Fixtures
) -> None:
    """Few errors (one create every 2 s) are enough to page while little else is asked; many
    good requests afterwards bring the 30m/6h branch of the alert under 6x again quickly."""
    database, alert = "pinstack_post", "PinstackGatewayAvailabilityBurnRateFast"
    api, account = installed.api, load_fixtures.account

    def create_post() -> int:
        response = api.call("POST", "/api/v1/posts", json={"title": "t"}, headers=account.headers)
        return response.status_code

    # Alertmanager tells a firing alert once: it must start from inactive (a re-run against a
    # running cluster may find it still firing on the errors of the previous run).
    firing = f'ALERTS{{alertname="{alert}", alertstate="firing"}}'
    poll(f"{alert} inactive", lambda: None if monitoring.prometheus.query(firing) else True,
         timeout=1800, interval=10)  # fmt: skip
    started = time.monotonic()
    _psql(installed, f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
    terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'"
    _psql(installed, terminate.format(database))
    try:

        def fired() -> float | None:
            status = create_post()
            assert status >= 500, status  # the database refuses: the gateway answers 5xx
            return _arrived(monitoring.webhook, alert, "firing", since=started)

        fire = poll(f"{alert} at the webhook", fired, timeout=900, interval=2)
    finally:
        restored = time.monotonic()
        _psql(installed, f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")
    installed.report(f"{alert} (for {WINDOWS[alert]}): fired {fire:.0f}s after {database} "
                     "refused connections")  # fmt: skip
    poll("post creating again", lambda: True if create_post() == 201 else None, timeout=120)
    with steady_load(installed, load_fixtures, rate=40):
        resolve = monitoring.webhook.wait_for(alert, "resolved", since=restored, timeout=1200)
    installed.report(f"{alert}: resolved {resolve:.0f}s after {database} accepted connections")


def _arrived(webhook: Webhook, alert: str, status: str, *, since: float) -> float | None:
    hits = [note.received - since for note in webhook.notifications
            if note.labels.get("alertname") == alert and note.status == status
            and note.received >= since]  # fmt: skip
    return hits[0] if hits else None


# ---------------------------------------------------------------------------------- expressions
# Last in the module: the alert tests above made errors, so error-only series exist in the
# windows (a ratio of errors is empty, not 0, while there are none: see EMPTY_BY_NATURE).


def _with_bool(expr: str) -> str:
    """An alert's condition as a value (``> bool 0.9``): series whenever its inputs exist."""
    return re.sub(r"(>=|<=|==|!=|>|<)\s*(?=[\d(])", r"\1 bool ", expr)


def rule_expressions() -> dict[str, str]:
    found: dict[str, str] = {}
    for group in RULES["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule["alert"]
            found[name] = rule["expr"] if "record" in rule else _with_bool(rule["expr"])
    return found


def dashboard_expressions() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(Path(REPO, "dashboards").glob("*.json")):

        def walk(panels: list[dict[str, Any]], board: str = path.stem) -> None:
            for panel in panels:
                for target in panel.get("targets", []):
                    expr = target["expr"]
                    for variable, value in DASHBOARD_VARIABLES.items():
                        expr = expr.replace(variable, value)
                    found[f"{board} / {panel['title']} / {target.get('refId', '')}"] = expr
                walk(panel.get("panels", []))

        walk(json.loads(path.read_text()).get("panels", []))
    return found


# Expressions that only ever return series for a failure, and why. Everything else must answer.
_DEAD_LETTERS = (
    "pinstack_dead_letter_total gets its first series when an event is dead-lettered (its topic "
    "is a label), which a working stack never does; the alert and panels exist for that case"
)
EMPTY_BY_NATURE: dict[str, str] = {
    "PinstackDeadLetters": _DEAD_LETTERS,
    **{f"{board} / Dead-lettered events / A": _DEAD_LETTERS
       for board in ("auth", "post", "relation", "notification", "overview")},
}  # fmt: skip


def _journeys(installed: Installed, fixtures: Fixtures, count: int) -> None:
    """What users do, mistakes included: every service answers some client error (its
    ``Errors by code`` panel), owners edit what they own (authorization counted)."""
    api = installed.api

    async def run() -> None:
        for _ in range(count):
            alice, bob = await api.register(), await api.register()
            await api.login(alice)
            await api.request("POST", "/api/v1/auth/login",
                              json={"login": alice.username, "password": "wrong"})  # fmt: skip
            created = await api.request("POST", "/api/v1/posts", json={"title": "monitored"},
                                        headers=alice.headers)  # fmt: skip
            post_id = created.json()["data"]["id"]
            await api.request("PUT", f"/api/v1/posts/{post_id}", json={"title": "edited"},
                              headers=alice.headers)  # fmt: skip
            async with api.socket(bob) as socket:
                await api.request("POST", "/api/v1/relation/follow",
                                  json={"followee_id": bob.id}, headers=alice.headers)  # fmt: skip
                await socket.collect(count=1, within=30)
            await api.request("POST", "/api/v1/relation/unfollow",
                              json={"followee_id": alice.id}, headers=bob.headers)  # fmt: skip
            feed = await api.request("GET", "/api/v1/notification/feed", headers=bob.headers)
            for note in feed.json()["data"]["notifications"]:
                await api.request("PUT", f"/api/v1/notification/{note['id']}/read",
                                  headers=bob.headers)  # fmt: skip
            await api.request("PUT", "/api/v1/notification/999999999/read", headers=bob.headers)
            await api.request("GET", f"/api/v1/posts/{fixtures.post_id}")
            await api.request("GET", "/api/v1/posts/999999999")
            await api.request("GET", f"/api/v1/users/{alice.id}")
            await api.request("GET", "/api/v1/users/999999999")
            await api.request("DELETE", f"/api/v1/posts/{post_id}", headers=alice.headers)

    api.netns.run(run(), timeout=600)


def test_every_rule_group_loads_and_every_expression_returns_series(
    installed: Installed, monitoring: Monitoring, load_fixtures: Fixtures
) -> None:
    loaded = {g["name"]: g for g in monitoring.prometheus.rule_groups()}
    for group in RULES["groups"]:
        assert group["name"] in loaded, sorted(loaded)
        rules = loaded[group["name"]]["rules"]
        assert len(rules) == len(group["rules"]), group["name"]
        assert all(rule["health"] == "ok" for rule in rules), rules
    _journeys(installed, load_fixtures, count=3)
    expressions = {**rule_expressions(), **dashboard_expressions()}
    pending = {name: expr for name, expr in expressions.items() if name not in EMPTY_BY_NATURE}

    def all_returned() -> bool | None:
        for name, expr in list(pending.items()):
            if monitoring.prometheus.query(expr):
                del pending[name]
        return True if not pending else None

    try:
        poll("every expression to return series", all_returned, timeout=150, interval=5)
    except AssertionError:
        dead = "\n".join(f"{name}: {expr}" for name, expr in sorted(pending.items()))
        raise AssertionError(f"{len(pending)} expressions return nothing:\n{dead}") from None
    installed.report(f"{len(expressions)} rule and panel expressions return series")
