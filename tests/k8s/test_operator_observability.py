"""The operator's own observability against a real API server: the metrics it serves (derived
from the status it writes), its ``/healthz``, the Normal Events it posts on a stack for what it
creates or changes, and the ``Reason`` printer column."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pinstack_operator.config import OperatorConfig
from pinstack_operator.resources import StackRef, migration_job_name
from tests.polling import eventually

from .conftest import StackFactory
from .test_operator import _complete_job

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(config: OperatorConfig, path: str = "/metrics") -> tuple[int, str]:
    url = f"http://127.0.0.1:{config.metrics_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


async def _samples(config: OperatorConfig) -> Samples:
    _, text = await asyncio.to_thread(_scrape, config)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def _events(stacks: StackFactory) -> list[dict[str, Any]]:
    events = await stacks.api.list("v1", "Event", namespace=stacks.namespace)
    return [e for e in events if e["involvedObject"]["kind"] == "PinstackStack"]


async def _event_messages(stacks: StackFactory, *wanted: str) -> set[str]:
    async def posted() -> set[str] | None:
        messages = {e["message"] for e in await _events(stacks) if e["type"] == "Normal"}
        return messages if set(wanted) <= messages else None

    return await eventually(posted, within=60, what=f"Normal events {wanted}")


def _stack(stacks: StackFactory, **overrides: Any) -> dict[str, Any]:
    return stacks.manifest(
        services=[{"name": "user", "database": stacks.database("user")}, {"name": "gateway"}],
        topics=[{"name": stacks.topic("user"), "partitions": 1}],
        monitoring={"enabled": False},
        **overrides,
    )


async def test_metrics_follow_the_status_and_events_say_what_was_created_or_changed(
    stacks: StackFactory, operator: OperatorConfig
) -> None:
    await stacks.api.apply(_stack(stacks))
    stack = await eventually(stacks.get, what="the stack")
    ref = StackRef(name="stack", namespace=stacks.namespace, uid=stack["metadata"]["uid"])
    job = migration_job_name(ref, service="user", image="registry.local/pinstack:1.0.0")

    # Normal Events for each child and the topic, on the stack (kubectl describe shows them).
    await _event_messages(
        stacks,
        "Created Secret stack-jwt-signing-key",
        "Created Secret stack-internal-token",
        "Created Secret stack-user-db",
        f"Created Job {job}",
        f"Created Kafka topic {stacks.topic('user')}",
        f"Provisioned database {stacks.database('user')} and its role",
    )
    for event in await _events(stacks):
        assert event["involvedObject"]["uid"] == ref.uid
        assert event["source"]["component"] == "pinstack-operator"

    # While the migration runs, the gauge carries the condition's status and reason.
    async def condition_series(kind: str, status: str, reason: str) -> Samples | None:
        samples = await _samples(operator)
        labels = {"namespace": stacks.namespace, "stack": "stack", "type": kind,
                  "status": status, "reason": reason}  # fmt: skip
        found = _total(samples, "pinstack_operator_stack_condition", **labels)
        return samples if found == 1 else None

    await eventually(
        lambda: condition_series("MigrationsComplete", "False", "MigrationsRunning"),
        within=60,
        what="MigrationsRunning in the metrics",
    )
    await _complete_job(stacks.api, stacks.namespace, job)
    samples = await eventually(
        lambda: condition_series("Ready", "True", "AllReady"), within=60, what="Ready in metrics"
    )
    # Other tests of the session leave stacks named "stack" in their own namespaces.
    mine = {"namespace": stacks.namespace, "stack": "stack"}
    assert _total(samples, "pinstack_operator_stack_condition", type="Ready", **mine) == 1
    assert _total(samples, "pinstack_operator_stacks", phase="Ready") >= 1
    assert ("pinstack_operator_stacks", frozenset({("phase", "Degraded")})) in samples  # 0 too
    assert _total(samples, "pinstack_operator_reconciles_total", trigger="change") >= 1
    assert _total(samples, "pinstack_operator_reconcile_duration_seconds_count") >= 1

    async def ready_pass_counted() -> bool:
        # The status is written inside the pass, the pass counted after it returns.
        samples = await _samples(operator)
        return _total(samples, "pinstack_operator_reconciles_total", result="ready") >= 1

    await eventually(ready_pass_counted, within=30, what="a pass counted as ready")

    # The Reason column is the Ready condition's reason.
    table = await stacks.api.table(
        "pinstack.io/v1alpha1", "PinstackStack", namespace=stacks.namespace
    )
    columns = [column["name"] for column in table["columnDefinitions"]]
    (row,) = table["rows"]
    assert row["cells"][columns.index("Reason")] == "AllReady"

    # A changed spec that changes a Secret: one "Updated" event; unchanged drift passes: none.
    before = [e for e in await _events(stacks) if e["reason"] == "Updated"]
    assert before == []
    postgres = {**_stack(stacks)["spec"]["postgres"], "sslmode": "prefer"}
    await stacks.api.apply(_stack(stacks, postgres=postgres))
    await _event_messages(stacks, "Updated Secret stack-user-db")
    updated = [e["message"] for e in await _events(stacks) if e["reason"] == "Updated"]
    assert updated == ["Updated Secret stack-user-db"], updated

    # Deleting the stack removes its series.
    await stacks.api.delete(
        "pinstack.io/v1alpha1", "PinstackStack", namespace=stacks.namespace, name="stack"
    )

    async def forgotten() -> bool:
        samples = await _samples(operator)
        return not _total(samples, "pinstack_operator_stack_condition", namespace=stacks.namespace)

    await eventually(forgotten, within=60, what="the stack's series gone")


async def test_healthz_answers_while_the_operator_runs(operator: OperatorConfig) -> None:
    status, body = await asyncio.to_thread(_scrape, operator, "/healthz")
    assert (status, body) == (200, "ok\n")
    _, text = await asyncio.to_thread(_scrape, operator)
    assert "pinstack_operator_leader 1.0" in text  # no leader election: it acts alone
