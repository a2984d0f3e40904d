"""Alert and recording rules: promtool check and unit tests, metric names, runbooks, SLO buckets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinstack_common.observability import metrics
from pinstack_devinfra.promtool import promtool_check_rules, promtool_test_rules
from tests.unit.test_dashboards import exported_series

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"
RULES = ALERTS / "pinstack.rules.yaml"
RUNBOOKS = REPO / "docs" / "observability.md"
METRIC = re.compile(r"(?<![\w:])(pinstack_[a-z0-9_]+)(?![\w:])")


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in promtool_check_rules(RULES)


def test_promtool_unit_tests() -> None:
    tests = sorted((ALERTS / "tests").glob("*.test.yaml"))
    assert tests
    output = promtool_test_rules(*tests, cwd=ALERTS / "tests")
    assert "SUCCESS" in output


def test_every_alert_has_a_unit_test() -> None:
    tested = set()
    for path in (ALERTS / "tests").glob("*.test.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts - tested == set(), "alerts never seen firing in a promtool test"


def test_rules_use_only_exported_metrics_and_recorded_series() -> None:
    exported = exported_series()
    recorded = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        for metric in METRIC.findall(rule["expr"]):
            assert metric in exported, f"{metric} is not exported by the code"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_:]+)\b", rule["expr"]):
            assert name in recorded, f"{name} is never recorded"


def test_every_alert_is_labelled_and_has_a_runbook() -> None:
    runbooks = RUNBOOKS.read_text().lower()
    anchors = set(re.findall(r"^#+\s+(\S+)", runbooks, flags=re.MULTILINE))
    for rule in _rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        anchor = annotations["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no '## {anchor}' section in {RUNBOOKS.name}"


def test_burn_rate_alerts_cover_both_slos_with_two_windows_each() -> None:
    alerts = {r["alert"]: r for r in _rules() if "alert" in r}
    for slo in ("Availability", "Latency"):
        fast = alerts[f"PinstackGateway{slo}BurnRateFast"]
        slow = alerts[f"PinstackGateway{slo}BurnRateSlow"]
        for window in ("rate1h", "rate5m", "rate6h", "rate30m"):
            assert window in fast["expr"]
        for window in ("rate1d", "rate2h", "rate3d", "rate6h"):
            assert window in slow["expr"]
        assert fast["labels"]["severity"] == "critical"
        assert slow["labels"]["severity"] == "warning"


@pytest.mark.parametrize("metric_name", ["HTTP_REQUEST_DURATION"])
def test_latency_slo_threshold_is_a_histogram_bucket(metric_name: str) -> None:
    """`le="0.25"` only selects a series if 0.25 is one of the code's bucket bounds."""
    histogram: Any = getattr(metrics, metric_name)
    bounds = {float(b) for b in histogram._upper_bounds}
    for rule in _rules():
        for le in re.findall(r'le="([0-9.]+)"', rule["expr"]):
            assert float(le) in bounds, f"le={le} is not a bucket of {metric_name}"


def test_rules_aggregate_per_namespace() -> None:
    """One Prometheus may watch several stacks: every aggregation keeps the namespace."""
    for rule in _rules():
        for by in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            assert "namespace" in by, f"{rule.get('alert') or rule.get('record')}: by ({by})"
