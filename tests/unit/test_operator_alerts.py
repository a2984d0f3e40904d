"""The operator chart's alerts: promtool check and unit tests, only series the operator exports,
a runbook per alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.promtool import promtool_check_rules, promtool_test_rules
from pinstack_operator.metrics import OperatorMetrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pinstack-operator"
RULES = CHART / "files" / "alerts" / "pinstack-operator.rules.yaml"
TESTS = CHART / "tests" / "alerts"
RUNBOOKS = REPO / "docs" / "observability.md"
METRIC = re.compile(r"(?<![\w:])(pinstack_operator_[a-z0-9_]+)(?![\w:])")


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_and_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool_check_rules(RULES)
    tests = sorted(TESTS.glob("*.test.yaml"))
    assert tests
    assert "SUCCESS" in promtool_test_rules(*tests, cwd=TESTS)


def test_every_alert_is_seen_firing_in_a_promtool_test() -> None:
    fired = {
        check["alertname"]
        for path in TESTS.glob("*.test.yaml")
        for case in yaml.safe_load(path.read_text())["tests"]
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert {"PinstackStackNotReady", "PinstackStackMigrationFailed"} <= fired
    assert {rule["alert"] for rule in _alerts()} <= fired


def test_alerts_use_only_series_the_operator_exports() -> None:
    metrics = OperatorMetrics()
    ready = {"type": "Ready", "status": "True"}
    metrics.observe_stack({"metadata": {"namespace": "n", "name": "s"},
                           "status": {"conditions": [ready]}})  # fmt: skip
    exported = {
        sample.name for family in metrics.registry.collect() for sample in family.samples
    } | {family.name for family in metrics.registry.collect()}
    for rule in _alerts():
        for name in METRIC.findall(rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is not exported by the operator"


def test_every_alert_is_labelled_and_has_a_runbook() -> None:
    anchors = set(re.findall(r"^#+\s+(\S+)", RUNBOOKS.read_text().lower(), flags=re.MULTILINE))
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no '## {anchor}' section in {RUNBOOKS.name}"
