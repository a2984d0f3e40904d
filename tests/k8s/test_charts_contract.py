"""The service chart and the operator agree on the Secrets the operator provisions.

The chart's defaults must reference exactly the Secret names and keys
``pinstack_operator.resources`` creates; otherwise pods never start (or worse, start unwired).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.helm import helm_template_objects
from pinstack_operator import resources
from pinstack_operator.migrations import (
    DEPLOYMENT_WATCH_SELECTOR,
    deployment_selector,
    images_of_deployments,
)
from pinstack_operator.models import StackSpec

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests" / "examples" / "pinstackstack.yaml"


def _stack() -> tuple[resources.StackRef, StackSpec]:
    example = yaml.safe_load(EXAMPLE.read_text())
    ref = resources.StackRef(
        name=example["metadata"]["name"], namespace=example["metadata"]["namespace"], uid="uid"
    )
    return ref, StackSpec.model_validate(example["spec"])


def _chart_objects(kind: str) -> list[dict[str, Any]]:
    """The chart's objects of ``kind``, rendered for the example stack."""
    ref, _ = _stack()
    objects = helm_template_objects(
        REPO / "charts" / "pinstack",
        namespace=ref.namespace,
        set_values={"stackName": ref.name},
    )
    return [o for o in objects if o["kind"] == kind]


def _deployments() -> dict[str, dict[str, Any]]:
    return {
        o["spec"]["template"]["spec"]["containers"][0]["name"]: o["spec"]["template"]["spec"]
        for o in _chart_objects("Deployment")
    }


def _secret_refs(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    refs = {}
    for container in pod.get("initContainers", []) + pod["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs[env["name"]] = (ref["name"], ref["key"])
    return refs


def test_database_secret_name_and_key_match_the_operator() -> None:
    ref, spec = _stack()
    pods = _deployments()
    for service in spec.services:
        if service.database is None:
            continue
        secret = resources.database_secret(ref, spec=spec, service=service, password="x")
        job = resources.migration_job(ref, spec=spec, service=service)
        job_env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        (job_ref,) = [e["valueFrom"]["secretKeyRef"] for e in job_env
                      if e["name"] == "PINSTACK_DATABASE_URL"]  # fmt: skip
        name, key = _secret_refs(pods[service.name])["PINSTACK_DATABASE_URL"]
        assert name == secret["metadata"]["name"]
        assert key in secret["data"]
        assert (name, key) == (job_ref["name"], job_ref["key"])


def test_internal_token_and_signing_key_match_the_operator() -> None:
    ref, _ = _stack()
    pods = _deployments()
    token = resources.internal_token_secret(ref, token="t")
    for component, pod in pods.items():
        name, key = _secret_refs(pod)["PINSTACK_INTERNAL_TOKEN"]
        assert name == token["metadata"]["name"], component
        assert key in token["data"], component
    volumes = {v["name"]: v for v in pods["auth"]["volumes"]}
    signing = volumes["signing-key"]["secret"]
    assert signing["secretName"] == resources.signing_key_secret_name(ref)
    assert [item["key"] for item in signing["items"]] == ["signing-key.pem"]


def test_operator_service_monitors_select_the_chart_services_and_their_ports() -> None:
    ref, spec = _stack()
    services = _chart_objects("Service")
    for service in spec.services:
        monitor = resources.service_monitor(ref, spec=spec, service=service)["spec"]
        wanted = monitor["selector"]["matchLabels"]
        (selected,) = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        ports = {port["name"] for port in selected["spec"]["ports"]}
        assert monitor["endpoints"][0]["port"] in ports, service.name


def test_operator_ships_the_same_alert_rules_as_the_chart() -> None:
    ref, spec = _stack()
    shipped = yaml.safe_load((REPO / "alerts" / "pinstack.rules.yaml").read_text())["groups"]
    assert resources.prometheus_rule(ref, spec=spec)["spec"]["groups"] == shipped


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """Equality (``k=v``) and existence (``k``) terms, all of which must hold."""
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def test_operator_finds_each_service_image_in_the_chart_deployments() -> None:
    """``helm upgrade --set image.tag=X`` is what moves migrations: the operator's (server-side)
    Deployment selectors must select the chart's Deployments, and read X from them."""
    ref, spec = _stack()
    objects = helm_template_objects(
        REPO / "charts" / "pinstack",
        namespace=ref.namespace,
        set_values={"stackName": ref.name, "image.tag": "9.9.9"},
    )
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    for deployment in deployments:
        labels = deployment["metadata"]["labels"]
        assert _selects(DEPLOYMENT_WATCH_SELECTOR, labels), labels
        assert _selects(deployment_selector(ref), labels), labels
        other = resources.StackRef(name="other", namespace=ref.namespace, uid="u")
        assert not _selects(deployment_selector(other), labels)
    for service in spec.migrating_services:
        (image,) = images_of_deployments(deployments, service.name)
        assert image.reference == "ghcr.io/pinstack/pinstack:9.9.9", service.name
        pod = next(
            d["spec"]["template"]["spec"]
            for d in deployments
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == service.name
        )
        # The init container that holds new pods checks the schema with that same image.
        (wait,) = [c for c in pod["initContainers"] if c["name"] == "wait-for-schema"]
        assert wait["image"] == image.reference
        assert "migrate check --service " + service.name in " ".join(wait["args"])


def _chart_monitoring(release: str) -> list[dict[str, Any]]:
    ref, _ = _stack()
    return [
        o
        for o in helm_template_objects(
            REPO / "charts" / "pinstack",
            namespace=ref.namespace,
            release=release,
            set_values={"stackName": ref.name, "monitoring.force": "true"},
        )
        if o["kind"] in {"ServiceMonitor", "PrometheusRule"}
    ]


def test_chart_and_operator_monitoring_names_never_collide() -> None:
    """A release named like the stack is the worst case: ``<release>-<component>`` and the
    operator's names must still differ, or one would adopt (and later prune) the other's."""
    ref, spec = _stack()
    chart = {(o["kind"], o["metadata"]["name"]) for o in _chart_monitoring(release=ref.name)}
    assert {kind for kind, _ in chart} == {"ServiceMonitor", "PrometheusRule"}
    operator = {
        ("ServiceMonitor", resources.service_monitor(ref, spec=spec, service=s)["metadata"]["name"])
        for s in spec.services
    } | {("PrometheusRule", resources.prometheus_rule(ref, spec=spec)["metadata"]["name"])}
    assert not chart & operator


def test_the_operator_recognises_the_chart_monitoring_as_not_its_own() -> None:
    """The operator steps aside when the chart monitors the stack: it finds the chart's objects
    by the stack label and a manager other than itself (``monitoring._owned_by_others``)."""
    ref, _ = _stack()
    for rendered in _chart_monitoring(release="anything"):
        labels = rendered["metadata"]["labels"]
        assert labels[resources.STACK_LABEL] == ref.name, rendered["metadata"]["name"]
        assert labels[resources.MANAGED_BY_LABEL] != resources.MANAGED_BY


def test_target_down_can_fire_whichever_path_scrapes() -> None:
    """``PinstackTargetDown`` matches ``up{app_kubernetes_io_part_of="pinstack"}``: both the chart's
    and the operator's ServiceMonitors must copy that Service label onto every target."""
    ref, spec = _stack()
    rules = yaml.safe_load((REPO / "alerts" / "pinstack.rules.yaml").read_text())["groups"]
    (target_down,) = [
        r for g in rules for r in g["rules"] if r.get("alert") == "PinstackTargetDown"
    ]
    assert 'app_kubernetes_io_part_of="pinstack"' in target_down["expr"]
    services = _chart_objects("Service")
    assert all(s["metadata"]["labels"][resources.PART_OF_LABEL] == "pinstack" for s in services)
    chart_monitors = [o for o in _chart_monitoring(release="x") if o["kind"] == "ServiceMonitor"]
    operator_monitors = [
        resources.service_monitor(ref, spec=spec, service=s) for s in spec.services
    ]
    for monitor in chart_monitors + operator_monitors:
        name = monitor["metadata"]["name"]
        assert resources.PART_OF_LABEL in monitor["spec"]["targetLabels"], name
