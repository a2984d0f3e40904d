"""The Helm charts: lint, render with every CI values file, validate offline, unit-test templates.

helm and helm-unittest are built from the Go module proxy and promtool is extracted from
Debian's package by ``pinstack_devinfra.helm`` and ``.promtool`` on first use (cached outside
the checkout).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinstack_devinfra.chart_copies import stale_chart_copies
from pinstack_devinfra.commands import ToolError
from pinstack_devinfra.helm import helm_lint, helm_template, helm_template_objects, helm_unittest
from pinstack_devinfra.manifests import render_operator_manifest
from pinstack_devinfra.promtool import promtool_check_rules
from pinstack_devinfra.validation import validate_custom_resource, validate_objects

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
APP_CHART = CHARTS / "pinstack"
OPERATOR_CHART = CHARTS / "pinstack-operator"
CRD_FILE = REPO / "crds" / "pinstackstack.yaml"
MONITORING_API = "monitoring.coreos.com/v1"

# (chart, CI values file, extra --api-versions): every file in <chart>/ci/ is rendered.
CASES = [
    pytest.param(chart, values, id=f"{chart.name}:{values.stem}")
    for chart in (APP_CHART, OPERATOR_CHART)
    for values in sorted((chart / "ci").glob("*.yaml"))
]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


@cache
def _crds() -> tuple[dict[str, Any], ...]:
    return (yaml.safe_load(CRD_FILE.read_text()),)


@cache
def _render(chart: Path, values: Path | None, monitoring_api: bool = False) -> list[dict[str, Any]]:
    return helm_template_objects(
        chart,
        values=[values] if values else [],
        api_versions=[MONITORING_API] if monitoring_api else [],
        include_crds=True,
        namespace="shop",
    )


def _pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]


# --------------------------------------------------------------------------- lint and render


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_helm_lint(chart: Path, values: Path) -> None:
    output = helm_lint(chart, values=[values])
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_rendered_objects_are_valid_kubernetes(chart: Path, values: Path) -> None:
    objects = _render(chart, values)
    assert objects, "nothing rendered"
    problems = validate_objects(objects, crds=_crds())
    assert not problems, "\n".join(problems)
    names = [(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
             for o in objects]  # fmt: skip
    assert len(names) == len(set(names)), "duplicate objects rendered"


def test_default_values_render_valid_objects() -> None:
    """A plain `helm install` without values (and with the Prometheus Operator present)."""
    for chart in (APP_CHART, OPERATOR_CHART):
        for with_monitoring in (False, True):
            objects = _render(chart, None, with_monitoring)
            assert not validate_objects(objects, crds=_crds())


def test_validation_catches_mistakes() -> None:
    """The offline validator is strict: unknown fields and wrong types are reported."""
    bad = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
         "spec": {"ports": [{"port": "eighty"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "y"},
         "spec": {"replicas": 1, "selector": {}, "template": {}, "bogus": True}},
        {"apiVersion": "pinstack.io/v1alpha1", "kind": "PinstackStack", "metadata": {"name": "z"},
         "spec": {"image": {"repository": "r"}}},
    ]  # fmt: skip
    problems = validate_objects(bad, crds=_crds())
    assert len(problems) == 3, problems


def test_values_schema_rejects_bad_values() -> None:
    with pytest.raises(ToolError, match="kind"):
        helm_template(APP_CHART, set_values={"components.auth.kind": "udp"})
    with pytest.raises(ToolError, match=r"unknownKey|additional"):
        helm_template(APP_CHART, set_values={"defaults.unknownKey": "1"})
    with pytest.raises(ToolError, match="watchNamespaces"):
        helm_template(OPERATOR_CHART, set_values={"watchNamespaces": "Not_A_Name"})
    with pytest.raises(ToolError, match="preStopSleepSeconds"):
        helm_template(APP_CHART, set_values={"defaults.preStopSleepSeconds": "-1"})
    with pytest.raises(ToolError, match="must exceed preStopSleepSeconds"):
        helm_template(APP_CHART, set_values={"defaults.terminationGracePeriodSeconds": "15"})


# --------------------------------------------------------------------------- hardened defaults


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_every_pod_is_hardened(chart: Path, values: Path) -> None:
    objects = _render(chart, values)
    specs = list(_pod_specs(objects))
    assert specs
    for name, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"]["memory"], where
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            assert "livenessProbe" in container, where
            if chart == APP_CHART:
                assert "readinessProbe" in container, where


@pytest.mark.parametrize(
    "values", [p.values[1] for p in CASES if p.values[0] == APP_CHART] + [None]
)
def test_app_pods_pause_before_shutdown_within_their_grace_period(values: Path | None) -> None:
    """The native preStop sleep (no binary in the image) lets endpoints drain before SIGTERM;
    the grace period leaves the app its own drain after it (HTTP 10 s; gRPC 5 s + relay 10 s)."""
    specs = list(_pod_specs(_render(APP_CHART, values)))
    assert len(specs) == 6
    for name, spec in specs:
        (container,) = spec["containers"]
        pause = container["lifecycle"]["preStop"]
        assert set(pause) == {"sleep"}, name
        drain = 10 if "gateway" in name else 15
        assert pause["sleep"]["seconds"] > 0, name
        assert spec["terminationGracePeriodSeconds"] > pause["sleep"]["seconds"] + drain, name


def test_app_chart_has_a_pdb_per_component_and_optional_hpa_and_netpol() -> None:
    default = _render(APP_CHART, APP_CHART / "ci" / "ci-values.yaml")
    full = _render(APP_CHART, APP_CHART / "ci" / "full-values.yaml")
    deployments = {o["metadata"]["name"] for o in default if o["kind"] == "Deployment"}
    components = ("gateway", "auth", "user", "post", "relation", "notification")
    assert deployments == {f"pinstack-{c}" for c in components}
    for kind in ("PodDisruptionBudget", "Service"):
        assert {o["metadata"]["name"] for o in default if o["kind"] == kind} == deployments
    for kind in ("HorizontalPodAutoscaler", "NetworkPolicy"):
        assert not [o for o in default if o["kind"] == kind]
        assert {o["metadata"]["name"] for o in full if o["kind"] == kind} == deployments


def test_operator_chart_elects_a_leader_and_has_rbac() -> None:
    objects = _render(OPERATOR_CHART, OPERATOR_CHART / "ci" / "ci-values.yaml")
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    # The Lease, not the rollout strategy, keeps two replicas from acting at once.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]
           ["containers"][0]["env"]}  # fmt: skip
    assert env["PINSTACK_OPERATOR_LEADER_ELECTION"] == "true"
    assert env["PINSTACK_OPERATOR_LEASE_NAMESPACE"] == "shop"
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "ServiceAccount", "ClusterRole",
            "ClusterRoleBinding", "Role", "RoleBinding"} <= kinds  # fmt: skip
    with pytest.raises(ToolError, match="replicas"):
        helm_template(OPERATOR_CHART, set_values={"leaderElection.enabled": "false",
                                                  "replicas": "2"})  # fmt: skip
    # Which verbs: tests/k8s/test_operator_rbac.py (exactly pinstack_operator.rbac).


# --------------------------------------------------------------------------- monitoring objects


def test_service_monitors_select_a_service_port_and_carry_the_release_label() -> None:
    objects = _render(APP_CHART, None, True)
    services = [o for o in objects if o["kind"] == "Service"]
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == 6
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in services
                   if selector.items() <= s["metadata"]["labels"].items()]  # fmt: skip
        assert len(matched) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"


def test_no_monitoring_objects_without_the_prometheus_operator() -> None:
    for chart in (APP_CHART, OPERATOR_CHART):
        kinds = {o["kind"] for o in _render(chart, None, False)}
        assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def test_operator_pod_monitor_scrapes_the_operator_pods_metrics_port(tmp_path: Path) -> None:
    objects = _render(OPERATOR_CHART, None, True)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    pod = deployment["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["shop"]}
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    unwrapped = tmp_path / "rules.yaml"
    unwrapped.write_text(yaml.safe_dump(rule["spec"]))
    assert "SUCCESS" in promtool_check_rules(unwrapped)
    source = OPERATOR_CHART / "files" / "alerts" / "pinstack-operator.rules.yaml"
    assert rule["spec"] == yaml.safe_load(source.read_text())


def test_prometheus_rule_spec_passes_promtool(tmp_path: Path) -> None:
    objects = _render(APP_CHART, None, True)
    rules = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    assert rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    unwrapped = tmp_path / "rules.yaml"
    unwrapped.write_text(yaml.safe_dump(rules[0]["spec"]))
    output = promtool_check_rules(unwrapped)
    assert "SUCCESS" in output
    source = yaml.safe_load((REPO / "alerts" / "pinstack.rules.yaml").read_text())
    assert rules[0]["spec"] == source


def test_dashboards_ship_as_sidecar_configmaps() -> None:
    objects = _render(APP_CHART, None)
    maps = [o for o in objects if o["kind"] == "ConfigMap"
            and o["metadata"]["labels"].get("grafana_dashboard") == "1"]  # fmt: skip
    shipped = {key for m in maps for key in m["data"]}
    assert shipped == {p.name for p in (REPO / "dashboards").glob("*.json")}
    for config_map in maps:
        for key, text in config_map["data"].items():
            assert json.loads(text) == json.loads((REPO / "dashboards" / key).read_text())


# --------------------------------------------------------------------------- copies and manifests


def test_chart_copies_are_fresh() -> None:
    """The CRD, dashboards and alert rules in the charts equal their sources."""
    problems = stale_chart_copies(REPO)
    assert not problems, (
        "\n".join(problems) + "\nrun: uv run python -m pinstack_devinfra.tools sync"
    )


def test_crd_in_operator_chart_is_identical_and_rendered_as_a_template() -> None:
    """A template, not crds/ (which Helm never upgrades); kept on uninstall."""
    copy = OPERATOR_CHART / "files" / "crds" / "pinstackstack.yaml"
    assert copy.read_bytes() == CRD_FILE.read_bytes()
    assert not copy.is_symlink()
    assert not (OPERATOR_CHART / "crds").exists()
    (crd,) = [o for o in helm_template_objects(OPERATOR_CHART)
              if o["kind"] == "CustomResourceDefinition"]  # fmt: skip
    assert crd == yaml.safe_load(CRD_FILE.read_text())
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_rendered_operator_manifest_is_fresh() -> None:
    manifest = REPO / "manifests" / "operator.yaml"
    assert manifest.read_text() == render_operator_manifest(REPO), (
        "manifests/operator.yaml is stale: uv run python -m pinstack_devinfra.tools render"
    )
    objects = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert not validate_objects(objects, crds=_crds())
    assert objects[0]["kind"] == "Namespace"
    assert [o["kind"] for o in objects].count("CustomResourceDefinition") == 1


def test_example_stack_matches_the_crd() -> None:
    example = yaml.safe_load((REPO / "manifests" / "examples" / "pinstackstack.yaml").read_text())
    validate_custom_resource(example, _crds())  # raises ToolError on a mismatch...
    example["spec"]["postgres"]["port"] = "5432"
    with pytest.raises(ToolError, match=r"spec\.postgres\.port"):  # ...as it does here
        validate_custom_resource(example, _crds())


def test_kind_manifests_are_valid() -> None:
    infra = [d for d in yaml.safe_load_all((REPO / "manifests/kind/infra.yaml").read_text()) if d]
    assert not validate_objects(infra)
    cluster = yaml.safe_load((REPO / "manifests/kind/cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster"
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert cluster["name"] == "pinstack"
    assert any(n["role"] == "control-plane" for n in cluster["nodes"])
    # The example stack's hosts are the Services of infra.yaml.
    example = yaml.safe_load((REPO / "manifests" / "examples" / "pinstackstack.yaml").read_text())
    services = {f"{o['metadata']['name']}.{o['metadata']['namespace']}.svc"
                for o in infra if o["kind"] == "Service"}  # fmt: skip
    assert example["spec"]["postgres"]["host"] in services
    assert example["spec"]["kafka"]["bootstrapServers"].split(":")[0] in services
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"])
               for o in infra if o["kind"] == "Secret"}  # fmt: skip
    admin = example["spec"]["postgres"]["adminCredentialsSecretRef"]["name"]
    assert (example["metadata"]["namespace"], admin) in secrets


def test_kind_values_render_valid_objects() -> None:
    values = REPO / "manifests" / "kind" / "pinstack-values.yaml"
    objects = _render(APP_CHART, values)
    assert not validate_objects(objects)
    env = {e["name"]: e.get("value") for o in objects if o["kind"] == "Deployment"
           and o["metadata"]["name"] == "pinstack-post"
           for e in o["spec"]["template"]["spec"]["containers"][0]["env"]}  # fmt: skip
    example = yaml.safe_load((REPO / "manifests" / "examples" / "pinstackstack.yaml").read_text())
    assert env["PINSTACK_KAFKA_BOOTSTRAP_SERVERS"] == example["spec"]["kafka"]["bootstrapServers"]
    assert env["PINSTACK_REDIS_URL"] == example["spec"]["redis"]["url"]


# --------------------------------------------------------------------------- helm-unittest


@pytest.mark.parametrize("chart", [APP_CHART, OPERATOR_CHART], ids=lambda c: c.name)
def test_helm_unittest(chart: Path) -> None:
    assert list((chart / "tests").glob("*_test.yaml")), "no template tests"
    result = subprocess.run(
        [str(helm_unittest()), "--color=false", str(chart)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout, result.stdout


def test_kind_gateway_node_port_is_mapped_by_the_cluster_config() -> None:
    objects = _render(APP_CHART, REPO / "manifests" / "kind" / "pinstack-values.yaml")
    (gateway,) = [o for o in objects if o["kind"] == "Service"
                  and o["metadata"]["name"] == "pinstack-gateway"]  # fmt: skip
    node_port = gateway["spec"]["ports"][0]["nodePort"]
    cluster = yaml.safe_load((REPO / "manifests/kind/cluster.yaml").read_text())
    mapped = {m["containerPort"] for n in cluster["nodes"] for m in n.get("extraPortMappings", [])}
    assert node_port in mapped
