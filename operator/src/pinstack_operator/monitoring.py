"""ServiceMonitors and PrometheusRules, when the Prometheus Operator's CRDs are installed.

Each kind has exactly one owner. The pinstack chart renders its own monitoring by default
(``monitoring.serviceMonitor.enabled`` / ``monitoring.prometheusRule.enabled``); the operator's
(``spec.monitoring.enabled``) is the explicit alternative. When the chart's objects for this stack
exist, the operator creates none of that kind, removes its own, and says so in the
``MonitoringReady`` condition (reason ``OwnedByChart``): scraping every target twice would double
every series and fire every alert twice.
"""

from __future__ import annotations

from pinstack_operator.conditions import ConditionResult
from pinstack_operator.kubeapi import KubeApi
from pinstack_operator.models import StackSpec
from pinstack_operator.resources import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    STACK_LABEL,
    StackRef,
    prometheus_rule,
    service_monitor,
)

__all__ = ["MONITORING_API", "MONITORING_NOT_OURS", "OWNED_BY_CHART", "reconcile_monitoring"]

MONITORING_API = "monitoring.coreos.com/v1"
_PLURALS = {"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}
_KIND = "MonitoringReady"
OWNED_BY_CHART = "OwnedByChart"
NOT_INSTALLED = "PrometheusOperatorNotInstalled"
# Reasons that say monitoring is not the operator's to do here: they never hold a stack back.
MONITORING_NOT_OURS = frozenset({NOT_INSTALLED, OWNED_BY_CHART})
# What the chart sets on the objects it renders; this operator's carry its own name instead.
_CHART_VALUES = {
    "ServiceMonitor": "monitoring.serviceMonitor.enabled",
    "PrometheusRule": "monitoring.prometheusRule.enabled",
}


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
            reason=NOT_INSTALLED,
            message=f"CRDs {', '.join(missing)} are not installed; install the Prometheus "
            "Operator (e.g. kube-prometheus-stack) to get ServiceMonitors and PrometheusRules",
        )
    chart_owned = await _owned_by_others(api, stack)
    wanted: set[tuple[str, str]] = set()
    if "ServiceMonitor" not in chart_owned:
        for service in spec.services:
            manifest = service_monitor(stack, spec=spec, service=service)
            await api.apply(manifest)
            wanted.add(("ServiceMonitor", manifest["metadata"]["name"]))
    if "PrometheusRule" not in chart_owned:
        rule = prometheus_rule(stack, spec=spec)
        await api.apply(rule)
        wanted.add(("PrometheusRule", rule["metadata"]["name"]))
    await _prune(api, stack, kinds=list(_PLURALS), keep=wanted)
    if chart_owned:
        names = ", ".join(f"{kind} {name}" for kind, name in sorted(chart_owned.items()))
        switches = " and ".join(f"{_CHART_VALUES[kind]}=false" for kind in sorted(chart_owned))
        return ConditionResult(
            type=_KIND,
            status="False",
            reason=OWNED_BY_CHART,
            message=f"the pinstack chart already monitors this stack ({names}); the operator "
            f"leaves that to it. To let the operator own it, install the chart with {switches}",
        )
    return ConditionResult(
        type=_KIND,
        status="True",
        reason="Configured",
        message=f"{len(spec.services)} ServiceMonitors and 1 PrometheusRule",
    )


async def _owned_by_others(api: KubeApi, stack: StackRef) -> dict[str, str]:
    """Per kind, one of this stack's monitoring objects someone else (the chart) manages."""
    selector = f"{STACK_LABEL}={stack.name},{MANAGED_BY_LABEL}!={MANAGED_BY}"
    found: dict[str, str] = {}
    for kind in _PLURALS:
        items = await api.list(
            MONITORING_API, kind, namespace=stack.namespace, label_selector=selector
        )
        if items:
            found[kind] = str(items[0]["metadata"]["name"])
    return found


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
