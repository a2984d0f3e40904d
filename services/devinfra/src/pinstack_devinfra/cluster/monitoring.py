"""The Prometheus Operator, a Prometheus and an Alertmanager for the cluster: what a user gets
from kube-prometheus-stack, built here without a registry.

The operator's CRDs and RBAC come from its own module (``example/`` of the version we build);
Prometheus (built from the Go module proxy) and Alertmanager (Debian's) run from local images
(:data:`MONITORING_IMAGES`).
Prometheus selects ServiceMonitors and PrometheusRules labelled ``release:
kube-prometheus-stack``, as kube-prometheus-stack's does by default, so the chart's defaults are
what it scrapes. Alertmanager sends every alert (and its resolution) to one webhook, at an
address in the cluster's network namespace that the tests listen on.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.cluster._log import step
from pinstack_devinfra.cluster.binaries import PROMETHEUS_OPERATOR_VERSION, PROMETHEUS_VERSION
from pinstack_devinfra.cluster.config import ClusterLayout
from pinstack_devinfra.cluster.images import MONITORING_IMAGES
from pinstack_devinfra.cluster.node import Cluster, wait_for
from pinstack_devinfra.gotools import go_module_dir

__all__ = [
    "ALERTMANAGER_CONFIG",
    "MONITORING_NAMESPACE",
    "PROMETHEUS_SERVICE",
    "WEBHOOK_PORT",
    "crd_directory",
    "install_monitoring",
    "monitoring_manifests",
    "operator_source",
    "wait_for_monitoring",
]

MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_SERVICE = "prometheus"  # ClusterIP Service in front of the Prometheus pod, port 9090
WEBHOOK_PORT = 19093
# kube-prometheus-stack's selector label and evaluation cadence (its defaults are 30s; 15s keeps
# the tier's waits short without touching the alerts' own `for` windows).
SELECTOR = {"release": "kube-prometheus-stack"}
EVALUATION_INTERVAL = "15s"
ALERTMANAGER_CONFIG = {
    "route": {
        "receiver": "webhook",
        "group_by": ["alertname", "namespace", "component", "job"],
        "group_wait": "0s",
        "group_interval": "5s",
        "repeat_interval": "1h",
    },
    "receivers": [
        {
            "name": "webhook",
            "webhook_configs": [{"url": "http://{node_ip}:{port}/", "send_resolved": True}],
        }
    ],
}


def operator_source(version: str = PROMETHEUS_OPERATOR_VERSION) -> Path:
    """The Prometheus Operator module's directory in Go's module cache (downloaded if needed)."""
    return go_module_dir("github.com/prometheus-operator/prometheus-operator", version)


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def crd_directory(source: Path) -> Path:
    """The operator's CRDs, one file each, applied as they are: PyYAML cannot even load them
    (a ``=`` plain scalar in an enum), and server-side apply is the way they fit (big schemas)."""
    return source / "example" / "prometheus-operator-crd"


def _example_rbac(source: Path, kind: str, parts: tuple[str, ...]) -> list[dict[str, Any]]:
    """``example/rbac/<kind>/<kind>-<part>.yaml`` of the module, moved to our namespace."""
    folder = source / "example" / "rbac" / kind
    documents = [doc for part in parts for doc in _load(folder / f"{kind}-{part}.yaml")]
    for doc in documents:
        if doc["kind"] in {"ServiceAccount", "Deployment", "Service"}:
            doc["metadata"]["namespace"] = MONITORING_NAMESPACE
        for subject in doc.get("subjects", []):
            subject["namespace"] = MONITORING_NAMESPACE
    return documents


def _operator(source: Path) -> list[dict[str, Any]]:
    parts = ("service-account", "cluster-role", "cluster-role-binding", "deployment")
    documents = _example_rbac(source, "prometheus-operator", parts)
    deployment = documents[-1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = MONITORING_IMAGES["operator"]
    container["imagePullPolicy"] = "Never"
    container["args"] = [f"--prometheus-config-reloader={MONITORING_IMAGES['config-reloader']}"]
    return documents


def _prometheus(source: Path) -> list[dict[str, Any]]:
    parts = ("service-account", "cluster-role", "cluster-role-binding")
    documents = _example_rbac(source, "prometheus", parts)
    meta = {"name": "k8s", "namespace": MONITORING_NAMESPACE}
    everywhere: dict[str, Any] = {}
    documents.append({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": meta,
        "spec": {
            "image": MONITORING_IMAGES["prometheus"],
            "version": PROMETHEUS_VERSION,
            "replicas": 1,
            "serviceAccountName": "prometheus",
            "evaluationInterval": EVALUATION_INTERVAL,
            "scrapeInterval": "30s",
            "serviceMonitorSelector": {"matchLabels": SELECTOR},
            "serviceMonitorNamespaceSelector": everywhere,
            "podMonitorSelector": {"matchLabels": SELECTOR},
            "podMonitorNamespaceSelector": everywhere,
            "ruleSelector": {"matchLabels": SELECTOR},
            "ruleNamespaceSelector": everywhere,
            "alerting": {"alertmanagers": [
                {"namespace": MONITORING_NAMESPACE, "name": "alertmanager-operated",
                 "port": "web"},
            ]},
            "resources": {"requests": {"memory": "200Mi"}},
        },
    })  # fmt: skip
    documents.append({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": PROMETHEUS_SERVICE, "namespace": MONITORING_NAMESPACE},
        "spec": {"selector": {"prometheus": "k8s"},
                 "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]},
    })  # fmt: skip
    return documents


def _alertmanager(layout: ClusterLayout) -> list[dict[str, Any]]:
    config = json.loads(
        json.dumps(ALERTMANAGER_CONFIG)
        .replace("{node_ip}", layout.node_ip)
        .replace("{port}", str(WEBHOOK_PORT))
    )
    meta = {"name": "main", "namespace": MONITORING_NAMESPACE}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "alertmanager-main", "namespace": MONITORING_NAMESPACE},
            "stringData": {"alertmanager.yaml": yaml.safe_dump(config)},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Alertmanager",
            "metadata": meta,
            "spec": {
                "image": MONITORING_IMAGES["alertmanager"],
                "version": "v0.25.0",
                "replicas": 1,
            },
        },
    ]


def monitoring_manifests(source: Path, layout: ClusterLayout) -> list[dict[str, Any]]:
    """The operator (Deployment, RBAC) and the Prometheus and Alertmanager it runs; the CRDs
    (:func:`crd_directory`) must be established first."""
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": MONITORING_NAMESPACE}}  # fmt: skip
    return [namespace, *_operator(source), *_prometheus(source), *_alertmanager(layout)]


def install_monitoring(cluster: Cluster) -> None:
    """Apply the CRDs (established before anything uses them: a chart installed next sees the
    ``monitoring.coreos.com/v1`` API), then the operator, Prometheus and Alertmanager, without
    waiting for their pods (:func:`wait_for_monitoring`)."""
    source = operator_source()
    with step("installing the Prometheus Operator's CRDs"):
        crds = str(crd_directory(source))
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=120s", "-f", crds,
                        timeout=130)  # fmt: skip
    cluster.apply(monitoring_manifests(source, cluster.layout), server_side=True)


def _prints_something(cluster: Cluster, args: list[str]) -> bool:
    return bool(cluster.kubectl(*args).strip())


def wait_for_monitoring(cluster: Cluster, *, timeout: float = 600) -> None:
    """The operator, and the Prometheus and Alertmanager StatefulSets it made, all ready."""
    namespace = ["-n", MONITORING_NAMESPACE]
    with step("waiting for the Prometheus Operator, Prometheus and Alertmanager"):
        cluster.kubectl(*namespace, "rollout", "status", "deployment/prometheus-operator",
                        f"--timeout={timeout:.0f}s", timeout=timeout + 10)  # fmt: skip
        for statefulset in ("prometheus-k8s", "alertmanager-main"):
            exists = [
                *namespace,
                "get",
                "statefulset",
                statefulset,
                "-o",
                "name",
                "--ignore-not-found",
            ]
            wait_for(
                f"statefulset {statefulset}",
                functools.partial(_prints_something, cluster, exists),
                timeout=timeout,
                interval=2,
            )
            cluster.kubectl(*namespace, "rollout", "status", f"statefulset/{statefulset}",
                            f"--timeout={timeout:.0f}s", timeout=timeout + 10)  # fmt: skip
