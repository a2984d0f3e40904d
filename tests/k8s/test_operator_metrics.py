"""The operator's observability and leadership settings, pure parts (no cluster needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pinstack_operator.config import OperatorConfig
from pinstack_operator.events import stack_of
from pinstack_operator.metrics import PHASES, OperatorMetrics
from pinstack_operator.resources import StackRef


def _series(metrics: OperatorMetrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset(sample.labels.items()): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def _stack(reason: str, *, phase: str = "Provisioning") -> dict[str, object]:
    return {
        "metadata": {"namespace": "shop", "name": "pinstack"},
        "status": {"phase": phase, "conditions": [
            {"type": "Ready", "status": "False", "reason": reason},
        ]},
    }  # fmt: skip


def test_condition_series_follow_the_status_and_go_with_the_stack() -> None:
    metrics = OperatorMetrics()
    metrics.observe_stack(_stack("WaitingForDatabases"))
    metrics.observe_stack(_stack("MigrationsRunning", phase="Migrating"))
    conditions = _series(metrics, "pinstack_operator_stack_condition")
    assert conditions == {
        frozenset({("namespace", "shop"), ("stack", "pinstack"), ("type", "Ready"),
                   ("status", "False"), ("reason", "MigrationsRunning")}): 1.0,
    }  # fmt: skip
    phases = _series(metrics, "pinstack_operator_stacks")
    assert {dict(labels)["phase"]: value for labels, value in phases.items()} == {
        **dict.fromkeys(PHASES, 0.0),
        "Migrating": 1.0,
    }
    metrics.observe_stack(_stack("MigrationsRunning"), deleted=True)
    assert _series(metrics, "pinstack_operator_stack_condition") == {}


def test_a_pass_that_raises_counts_as_an_error_with_its_type() -> None:
    metrics = OperatorMetrics()
    with pytest.raises(TimeoutError), metrics.reconcile("resync"):
        raise TimeoutError
    with metrics.reconcile("change") as current:
        current.result = "not_ready"
    reconciles = _series(metrics, "pinstack_operator_reconciles_total")
    assert reconciles == {
        frozenset({("trigger", "resync"), ("result", "error")}): 1.0,
        frozenset({("trigger", "change"), ("result", "not_ready")}): 1.0,
    }
    errors = _series(metrics, "pinstack_operator_reconcile_errors_total")
    assert errors == {frozenset({("trigger", "resync"), ("error", "TimeoutError")}): 1.0}
    durations = _series(metrics, "pinstack_operator_reconcile_duration_seconds_count")
    assert sum(durations.values()) == 2


def test_events_find_the_stack_of_a_child_by_label_and_uid() -> None:
    labelled = {"name": "x", "namespace": "shop", "labels": {"pinstack.io/stack": "pinstack"}}
    owned = {**labelled, "ownerReferences": [{"kind": "PinstackStack", "uid": "u1"}]}
    secret = {**labelled, "annotations": {"pinstack.io/stack-uid": "u2"}}
    assert stack_of({"metadata": owned}) == StackRef(name="pinstack", namespace="shop", uid="u1")
    assert stack_of({"metadata": secret}) == StackRef(name="pinstack", namespace="shop", uid="u2")
    assert stack_of({"metadata": labelled}) is None  # no uid: not ours to report on
    assert stack_of({"metadata": {"name": "status-only"}}) is None


def test_leader_election_settings() -> None:
    with pytest.raises(ValidationError, match="LEASE_NAMESPACE"):
        OperatorConfig(leader_election=True)
    first, second = OperatorConfig(), OperatorConfig()
    assert first.identity != second.identity  # two replicas never share an identity
    config = OperatorConfig.from_env({
        "PINSTACK_OPERATOR_LEADER_ELECTION": "true",
        "PINSTACK_OPERATOR_LEASE_NAMESPACE": "pinstack-system",
        "PINSTACK_OPERATOR_LEASE_SECONDS": "20",
        "PINSTACK_OPERATOR_METRICS_PORT": "8080",
        "PINSTACK_OPERATOR_IDENTITY": "pod-a",
    })  # fmt: skip
    assert (config.leader_election, config.lease_namespace, config.lease_name) == (
        True, "pinstack-system", "pinstack-operator",
    )  # fmt: skip
    assert (config.lease_seconds, config.metrics_port, config.identity) == (20.0, 8080, "pod-a")
