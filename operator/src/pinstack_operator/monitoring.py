"""ServiceMonitors and PrometheusRules, when the Prometheus Operator's CRDs are installed."""

from __future__ import annotations

from pinstack_operator.conditions import ConditionResult
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import StackSpec
from pinstack_operator.resources import (
    COMPONENT_LABEL,
    STACK_LABEL,
    StackRef,
    prometheus_rule,
    service_monitor,
)

__all__ = ["MONITORING_API", "reconcile_monitoring"]

MONITORING_API = "monitoring.coreos.com/v1"
_PLURALS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}
_KIND = "MonitoringReady"


async def reconcile_monitoring(
    api: KubeApi, stack: StackRef, *, spec: StackSpec
) -> ConditionResult:
    installed = {
        kind: await api.serves(MONITORING_API, plural) for kind, plural in _PLURALS.items()
    }
    if not spec.monitoring.enabled:
        await _prune(api, stack, kinds=[kind for kind, present in installed.items() if present])
        return ConditionResult(
            type=_KIND, status="True", reason="Disabled", message="monitoring is disabled"
        )
    missing = sorted(
        f"{plural}.monitoring.coreos.com"
        for kind, plural in _PLURALS.items()
        if not installed[kind]
    )
    if missing:
        return ConditionResult(
            type=_KIND,
            status="False",
            reason="PrometheusOperatorNotInstalled",
            message=f"CRDs {', '.join(missing)} are not installed; install the Prometheus "
            "Operator (e.g. kube-prometheus-stack) to get ServiceMonitors and PrometheusRules",
        )
    wanted: set[tuple[str, str]] = set()
    for service in spec.services:
        manifest = service_monitor(stack, spec=spec, service=service)
        await api.apply(manifest)
        wanted.add(("ServiceMonitor", manifest["metadata"]["name"]))
    rule = prometheus_rule(stack, spec=spec)
    await api.apply(rule)
    wanted.add(("PrometheusRule", rule["metadata"]["name"]))
    await _prune(api, stack, kinds=list(_PLURALS), keep=wanted)
    return ConditionResult(
        type=_KIND,
        status="True",
        reason="Configured",
        message=f"{len(spec.services)} ServiceMonitors and 1 PrometheusRule",
    )


async def _prune(
    api: KubeApi,
    stack: StackRef,
    *,
    kinds: list[str],
    keep: set[tuple[str, str]] | None = None,
) -> None:
    """Delete this stack's monitoring objects that are no longer wanted."""
    selector = f"{STACK_LABEL}={stack.name},{COMPONENT_LABEL}=monitoring"
    for kind in kinds:
        items = await api.list(
            MONITORING_API, kind, namespace=stack.namespace, label_selector=selector
        )
        for item in items:
            name = item["metadata"]["name"]
            if keep is None or (kind, name) not in keep:
                await api.delete(MONITORING_API, kind, namespace=stack.namespace, name=name)
