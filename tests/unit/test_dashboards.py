"""Grafana dashboards: generated, well-formed, valid PromQL, querying only exported metrics."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pinstack_auth import metrics as auth_metrics
from pinstack_common.observability import metrics
from pinstack_devinfra.promtool import promtool_check_rules
from pinstack_notification import metrics as notification_metrics
from pinstack_post import metrics as post_metrics
from pinstack_relation import metrics as relation_metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
# Labels Prometheus adds when it scrapes (target labels of the chart's ServiceMonitors).
TARGET_LABELS = {"namespace", "pod", "instance", "job", "service", "container", "endpoint",
                 "app_kubernetes_io_part_of"}  # fmt: skip
# Grafana variables and their stand-ins for PromQL checks.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m",
                "$namespace": ".*"}  # fmt: skip
METRIC = re.compile(r"\b(pinstack_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(pinstack_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def exported_series() -> dict[str, set[str]]:
    """Every series name the code exports, with its labels (histograms: _bucket/_sum/_count)."""
    series: dict[str, set[str]] = {}
    modules = (metrics, auth_metrics, post_metrics, relation_metrics, notification_metrics)
    for owner, name in ((module, name) for module in modules for name in module.__all__):
        metric: Any = getattr(owner, name)
        (family,) = metric.describe()
        labels = set(getattr(metric, "_labelnames", ()))
        if family.type == "counter":
            series[f"{family.name}_total"] = labels
        elif family.type == "histogram":
            series[f"{family.name}_bucket"] = labels | {"le"}
            series[f"{family.name}_sum"] = labels
            series[f"{family.name}_count"] = labels
        else:
            series[family.name] = labels
    return series


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(board) for t in p.get("targets", [])]


def test_the_metric_list_matches_the_agreed_names() -> None:
    """The names dashboards and alerts rely on (issue 6) are all exported."""
    agreed = {
        "pinstack_http_requests_total", "pinstack_http_request_duration_seconds_bucket",
        "pinstack_grpc_client_requests_total",
        "pinstack_grpc_client_request_duration_seconds_bucket",
        "pinstack_authentication_total", "pinstack_authorization_total",
        "pinstack_proxy_requests_total", "pinstack_proxy_errors_total",
        "pinstack_websocket_connections", "pinstack_grpc_server_requests_total",
        "pinstack_grpc_server_request_duration_seconds_bucket",
        "pinstack_db_query_duration_seconds_bucket", "pinstack_db_pool_connections",
        "pinstack_cache_requests_total", "pinstack_outbox_backlog",
        "pinstack_outbox_oldest_event_age_seconds", "pinstack_events_published_total",
        "pinstack_events_consumed_total", "pinstack_consumer_lag", "pinstack_dead_letter_total",
        "pinstack_registrations_total", "pinstack_logins_total", "pinstack_posts_created_total",
        "pinstack_follows_total", "pinstack_notifications_created_total",
    }  # fmt: skip
    assert agreed <= exported_series().keys()


def test_committed_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    generator = _generator()
    generator.write(tmp_path)
    generated = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert generated == committed, "run: uv run python dashboards/generate.py"


def test_an_overview_and_one_dashboard_per_component() -> None:
    names = set(_boards())
    assert names == {"overview.json", "gateway.json", "auth.json", "user.json", "post.json",
                     "relation.json", "notification.json"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_dashboard_is_well_formed(name: str) -> None:
    board = _boards()[name]
    assert board["uid"].startswith("pinstack-")
    assert board["title"].startswith("Pinstack / ")
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))


def test_dashboard_uids_are_unique() -> None:
    uids = [b["uid"] for b in _boards().values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_every_queried_metric_is_exported(name: str) -> None:
    exported = exported_series()
    for expr in _exprs(_boards()[name]):
        for metric in METRIC.findall(expr):
            assert metric in exported, f"{name}: {metric} is not exported by the code ({expr})"
        for metric, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                assert label in exported[metric] | TARGET_LABELS, (
                    f"{name}: {metric} has no label {label!r} ({expr})"
                )


def test_every_service_dashboard_filters_on_its_component() -> None:
    for component in ("auth", "user", "post", "relation", "notification"):
        exprs = _exprs(_boards()[f"{component}.json"])
        scoped = [e for e in exprs if "component=" in e]
        assert all(f'component="{component}"' in e for e in scoped), component
        assert len(scoped) >= 10, component


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression (Grafana variables replaced by stand-ins)."""
    rules = []
    for name, board in _boards().items():
        for i, expr in enumerate(_exprs(board)):
            concrete = expr
            for var, value in GRAFANA_VARS.items():
                concrete = concrete.replace(var, value)
            assert "$" not in concrete, f"{name}: unknown Grafana variable in {expr}"
            rules.append({"record": f"check:{name.removesuffix('.json')}:{i}", "expr": concrete})
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert "SUCCESS" in promtool_check_rules(path)
