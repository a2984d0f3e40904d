"""Generate the Grafana dashboards in this directory (one overview, one per component).

The JSON files are committed (Grafana, the chart and reviewers read them); this script is their
source. Regenerate with ``uv run python dashboards/generate.py`` and then
``uv run python -m pinstack_devinfra.tools sync`` to refresh the chart's copies.
tests/unit/test_dashboards.py fails when a committed file differs from what this script writes,
and checks every metric queried against pinstack_common.observability.metrics and the
services' metrics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["FEATURES", "SERVICES", "dashboards", "write"]

HERE = Path(__file__).resolve().parent
SERVICES = ("auth", "user", "post", "relation", "notification")
DS = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace=~"$namespace"'
RI = "$__rate_interval"
# Business counters each service owns (metric, title).
BUSINESS: dict[str, list[tuple[str, str]]] = {
    "auth": [
        ("pinstack_registrations_total", "Registrations"),
        ("pinstack_logins_total", "Logins"),
    ],
    "user": [],
    "post": [("pinstack_posts_created_total", "Posts created")],
    "relation": [("pinstack_follows_total", "Follows")],
    "notification": [("pinstack_notifications_created_total", "Notifications created")],
}

# Ratios of an error-only (or hit-only) series divide `... or vector(0)`: without it a healthy
# stack's error ratio is "No data" instead of 0 (and its availability "No data" instead of 100%).
# What each service does beyond RPCs and its database: a panel for something a service never
# does shows "No data" forever (the cluster tier queries every panel against a live stack).
FEATURES: dict[str, frozenset[str]] = {
    "auth": frozenset({"consumes"}),
    "user": frozenset({"publishes"}),
    "post": frozenset({"publishes", "consumes", "cache"}),
    "relation": frozenset({"publishes", "consumes"}),
    "notification": frozenset({"publishes", "consumes"}),
}

Panel = dict[str, Any]


class _Layout:
    """Places panels left to right on a 24-column grid and hands out panel ids."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1
        self.panels: list[Panel] = []

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": self._id(),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: Panel, *, w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "datasource": DS,
            "expr": expr,
            "legendFormat": legend,
            "refId": chr(ord("A") + i),
            "range": True,
        }
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    stack: bool = False,
    description: str = "",
) -> Panel:
    """A time-series panel."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": _targets(queries),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "fillOpacity": 15 if stack else 5,
                    "lineWidth": 1,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["mean", "max", "lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    expr: str,
    *,
    unit: str = "short",
    thresholds: list[tuple[float | None, str]] | None = None,
    description: str = "",
) -> Panel:
    """A single-value panel with colour thresholds."""
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": _targets([(expr, title)]),
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "auto",
        },
    }


def _templating(component: str | None) -> dict[str, Any]:
    probe = (
        "pinstack_http_requests_total"
        if component in (None, "gateway")
        else ("pinstack_grpc_server_requests_total")
    )
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
            },
            {
                "name": "namespace",
                "label": "Namespace",
                "type": "query",
                "datasource": DS,
                "query": {"query": f"label_values({probe}, namespace)", "refId": "namespace"},
                "definition": f"label_values({probe}, namespace)",
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {},
                "hide": 0,
                "refresh": 2,
                "sort": 1,
            },
        ]
    }


def _dashboard(uid: str, title: str, component: str | None, layout: _Layout) -> dict[str, Any]:
    links = (
        []
        if component is None
        else [
            {
                "title": "Pinstack overview",
                "type": "link",
                "url": "/d/pinstack-overview",
                "keepTime": True,
                "includeVars": True,
                "icon": "dashboard",
            }
        ]
    )
    return {
        "uid": uid,
        "title": title,
        "description": f"Generated by dashboards/generate.py ({uid}).",
        "tags": ["pinstack"] + ([component] if component else ["overview"]),
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": _templating(component),
        "annotations": {"list": []},
        "links": links,
        "panels": layout.panels,
    }


def _grpc_red(layout: _Layout, comp: str) -> None:
    sel = f'{NS}, component="{comp}"'
    layout.row("Requests (RED)")
    layout.add(
        timeseries(
            "RPC rate by method",
            [
                (
                    f"sum by (method) (rate(pinstack_grpc_server_requests_total{{{sel}}}[{RI}]))",
                    "{{method}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Errors by code",
            [
                (
                    f"sum by (code) (rate(pinstack_grpc_server_requests_total{{{sel}, "
                    f'code!="OK"}}[{RI}]))',
                    "{{code}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Latency p50 / p95 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(pinstack_grpc_server_request_duration_seconds_bucket{{{sel}}}[{RI}])))",
                    f"p{p}",
                )
                for q, p in (("0.5", "50"), ("0.95", "95"), ("0.99", "99"))
            ],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "p99 latency by method",
            [
                (
                    f"histogram_quantile(0.99, sum by (le, method) "
                    f"(rate(pinstack_grpc_server_request_duration_seconds_bucket{{{sel}}}[{RI}])))",
                    "{{method}}",
                )
            ],
            unit="s",
        ),
        w=24,
    )


def _data(layout: _Layout, comp: str, *, database: bool = True, cache: bool = True) -> None:
    sel = f'{NS}, component="{comp}"'
    layout.row("Database and cache" if cache else "Database")
    if database:
        layout.add(
            timeseries(
                "Query latency p50 / p99",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(pinstack_db_query_duration_seconds_bucket{{{sel}}}[{RI}])))",
                        f"p{p}",
                    )
                    for q, p in (("0.5", "50"), ("0.99", "99"))
                ],
                unit="s",
            ),
            w=8,
        )
        layout.add(
            timeseries(
                "Query rate",
                [
                    (
                        f"sum(rate(pinstack_db_query_duration_seconds_count{{{sel}}}[{RI}]))",
                        "queries",
                    )
                ],
                unit="ops",
            ),
            w=8,
        )
        layout.add(
            timeseries(
                "Pool connections",
                [(f"sum by (state) (pinstack_db_pool_connections{{{sel}}})", "{{state}}")],
                stack=True,
            ),
            w=8,
        )
    if not cache:
        return
    layout.add(
        timeseries(
            "Cache lookups by result",
            [
                (
                    f"sum by (result) (rate(pinstack_cache_requests_total{{{sel}}}[{RI}]))",
                    "{{result}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Cache hit ratio",
            [
                (
                    f'(sum(rate(pinstack_cache_requests_total{{{sel}, result="hit"}}[{RI}])) '
                    f"or vector(0)) / sum(rate(pinstack_cache_requests_total{{{sel}}}[{RI}]))",
                    "hit ratio",
                )
            ],
            unit="percentunit",
        ),
        w=12,
    )


def _events(layout: _Layout, comp: str) -> None:
    """Outbox and published events for a publisher, consumption and lag for a consumer."""
    sel = f'{NS}, component="{comp}"'
    features = FEATURES[comp]
    panels: list[Panel] = []
    if "publishes" in features:
        panels += [
            timeseries(
                "Outbox backlog", [(f"sum(pinstack_outbox_backlog{{{sel}}})", "unpublished events")]
            ),
            timeseries(
                "Oldest unpublished event",
                [(f"max(pinstack_outbox_oldest_event_age_seconds{{{sel}}})", "age")],
                unit="s",
            ),
            timeseries(
                "Published by topic",
                [
                    (
                        f"sum by (topic) (rate(pinstack_events_published_total{{{sel}}}[{RI}]))",
                        "{{topic}}",
                    )
                ],
                unit="ops",
            ),
        ]
    if "consumes" in features:
        panels += [
            timeseries(
                "Consumed by topic and result",
                [
                    (
                        "sum by (topic, result) "
                        f"(rate(pinstack_events_consumed_total{{{sel}}}[{RI}]))",
                        "{{topic}} {{result}}",
                    )
                ],
                unit="ops",
            ),
            timeseries(
                "Consumer lag", [(f"sum by (topic) (pinstack_consumer_lag{{{sel}}})", "{{topic}}")]
            ),
            timeseries(
                "Dead-lettered events",
                [
                    (
                        f"sum by (topic) (increase(pinstack_dead_letter_total{{{sel}}}[$__range]))",
                        "{{topic}}",
                    )
                ],
                description="Events parked on a dead-letter topic in the range.",
            ),
        ]
    if not panels:
        return
    layout.row("Events")
    widths = [6, 6, 6, 6, 12, 12] if len(panels) == 6 else [24 // len(panels)] * len(panels)
    for panel, width in zip(panels, widths, strict=True):
        layout.add(panel, w=width)


def _business(layout: _Layout, comp: str) -> None:
    if not BUSINESS[comp]:
        return
    layout.row("Business")
    width = 24 // len(BUSINESS[comp])
    for metric, title in BUSINESS[comp]:
        by = " by (result)" if metric == "pinstack_logins_total" else ""
        legend = "{{result}}" if by else title
        layout.add(
            timeseries(
                f"{title} per minute",
                [(f"sum{by} (rate({metric}{{{NS}}}[{RI}])) * 60", legend)],
                unit="short",
            ),
            w=width,
        )


def service_dashboard(comp: str) -> dict[str, Any]:
    """One gRPC service: RED per RPC, data access, events, business counters."""
    layout = _Layout()
    sel = f'{NS}, component="{comp}"'
    publishes = "publishes" in FEATURES[comp]
    width = 6 if publishes else 8
    layout.add(
        stat(
            "RPC rate", f"sum(rate(pinstack_grpc_server_requests_total{{{sel}}}[5m]))", unit="reqps"
        ),
        w=width,
        h=4,
    )
    layout.add(
        stat(
            "Server error ratio",
            f'(sum(rate(pinstack_grpc_server_requests_total{{{sel}, code=~"(?i)unknown|internal|'
            f'unavailable|data_loss|deadline_exceeded"}}[5m])) or vector(0)) / '
            f"sum(rate(pinstack_grpc_server_requests_total{{{sel}}}[5m]))",
            unit="percentunit",
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        w=width,
        h=4,
    )
    layout.add(
        stat(
            "p99 latency",
            f"histogram_quantile(0.99, sum by (le) "
            f"(rate(pinstack_grpc_server_request_duration_seconds_bucket{{{sel}}}[5m])))",
            unit="s",
            thresholds=[(None, "green"), (0.1, "orange"), (0.5, "red")],
        ),
        w=width,
        h=4,
    )
    if publishes:
        layout.add(
            stat(
                "Oldest outbox event",
                f"max(pinstack_outbox_oldest_event_age_seconds{{{sel}}})",
                unit="s",
                thresholds=[(None, "green"), (60, "orange"), (120, "red")],
            ),
            w=width,
            h=4,
        )
    _grpc_red(layout, comp)
    _data(layout, comp, cache="cache" in FEATURES[comp])
    _events(layout, comp)
    _business(layout, comp)
    return _dashboard(f"pinstack-{comp}", f"Pinstack / {comp.capitalize()}", comp, layout)


def gateway_dashboard() -> dict[str, Any]:
    """The HTTP gateway: routes, statuses, upstream calls, auth decisions, WebSockets."""
    layout = _Layout()
    http = f"pinstack_http_requests_total{{{NS}}}"
    layout.add(stat("Request rate", f"sum(rate({http}[5m]))", unit="reqps"), w=6, h=4)
    layout.add(
        stat(
            "5xx ratio",
            f'(sum(rate(pinstack_http_requests_total{{{NS}, status=~"5.."}}[5m])) or vector(0)) '
            f"/ sum(rate({http}[5m]))",
            unit="percentunit",
            thresholds=[(None, "green"), (0.005, "orange"), (0.02, "red")],
        ),
        w=6,
        h=4,
    )
    layout.add(
        stat(
            "p99 latency",
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(pinstack_http_request_duration_seconds_bucket{{{NS}}}[5m])))",
            unit="s",
            thresholds=[(None, "green"), (0.25, "orange"), (1, "red")],
        ),
        w=6,
        h=4,
    )
    layout.add(stat("Open WebSockets", f"sum(pinstack_websocket_connections{{{NS}}})"), w=6, h=4)
    layout.row("HTTP")
    layout.add(
        timeseries(
            "Requests by route",
            [(f"sum by (method, route) (rate({http}[{RI}]))", "{{method}} {{route}}")],
            unit="reqps",
            stack=True,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Responses by status",
            [(f"sum by (status) (rate({http}[{RI}]))", "{{status}}")],
            unit="reqps",
            stack=True,
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "p99 latency by route",
            [
                (
                    "histogram_quantile(0.99, sum by (le, method, route) "
                    f"(rate(pinstack_http_request_duration_seconds_bucket{{{NS}}}[{RI}])))",
                    "{{method}} {{route}}",
                )
            ],
            unit="s",
        ),
        w=12,
    )
    layout.add(
        timeseries(
            "Requests faster than 250 ms (latency SLI)",
            [
                (
                    f"sum(rate(pinstack_http_request_duration_seconds_bucket{{{NS}, "
                    f'le="0.25"}}[{RI}])) / '
                    f"sum(rate(pinstack_http_request_duration_seconds_count{{{NS}}}[{RI}]))",
                    "fast",
                )
            ],
            unit="percentunit",
        ),
        w=12,
    )
    layout.row("Upstreams")
    layout.add(
        timeseries(
            "gRPC client calls by service and code",
            [
                (
                    f"sum by (service, code) "
                    f"(rate(pinstack_grpc_client_requests_total{{{NS}}}[{RI}]))",
                    "{{service}} {{code}}",
                )
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "gRPC client p99 by service",
            [
                (
                    "histogram_quantile(0.99, sum by (le, service) "
                    f"(rate(pinstack_grpc_client_request_duration_seconds_bucket{{{NS}}}[{RI}])))",
                    "{{service}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Proxied requests and errors",
            [
                (
                    f"sum by (service) (rate(pinstack_proxy_requests_total{{{NS}}}[{RI}]))",
                    "{{service}}",
                ),
                (
                    f"sum by (service, code) (rate(pinstack_proxy_errors_total{{{NS}}}[{RI}]))",
                    "{{service}} error {{code}}",
                ),
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.row("Security and connections")
    layout.add(
        timeseries(
            "Authentication by result",
            [
                (
                    f"sum by (result) (rate(pinstack_authentication_total{{{NS}}}[{RI}]))",
                    "{{result}}",
                )
            ],
            unit="ops",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Authorization by result",
            [(f"sum by (result) (rate(pinstack_authorization_total{{{NS}}}[{RI}]))", "{{result}}")],
            unit="ops",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "WebSocket connections", [(f"sum(pinstack_websocket_connections{{{NS}}})", "open")]
        ),
        w=8,
    )
    _data(layout, "gateway", database=False)
    return _dashboard("pinstack-gateway", "Pinstack / Gateway", "gateway", layout)


def overview_dashboard() -> dict[str, Any]:
    """The whole stack: SLOs, every component's RED, event health, business counters."""
    layout = _Layout()
    http = f"pinstack_http_requests_total{{{NS}}}"
    layout.add(
        stat(
            "Availability (SLO 99.5%)",
            f'1 - ((sum(rate(pinstack_http_requests_total{{{NS}, status=~"5.."}}[$__range])) '
            f"or vector(0)) / sum(rate({http}[$__range])))",
            unit="percentunit",
            thresholds=[(None, "red"), (0.99, "orange"), (0.995, "green")],
            description="Share of gateway requests in the range that did not answer 5xx.",
        ),
        w=6,
        h=4,
    )
    layout.add(
        stat(
            "Fast requests (SLO 99% < 250 ms)",
            f"sum(rate(pinstack_http_request_duration_seconds_bucket{{{NS}, "
            f'le="0.25"}}[$__range])) '
            f"/ sum(rate(pinstack_http_request_duration_seconds_count{{{NS}}}[$__range]))",
            unit="percentunit",
            thresholds=[(None, "red"), (0.98, "orange"), (0.99, "green")],
        ),
        w=6,
        h=4,
    )
    layout.add(stat("Gateway request rate", f"sum(rate({http}[5m]))", unit="reqps"), w=6, h=4)
    layout.add(
        stat(
            "Error budget burn (1h)",
            f'((sum(rate(pinstack_http_requests_total{{{NS}, status=~"5.."}}[1h])) or vector(0)) '
            f"/ sum(rate({http}[1h]))) / 0.005",
            thresholds=[(None, "green"), (1, "orange"), (14.4, "red")],
            description="How many times faster than sustainable the availability budget burns.",
        ),
        w=6,
        h=4,
    )
    layout.row("Components")
    layout.add(
        timeseries(
            "RPC rate by component",
            [
                (
                    f"sum by (component) (rate(pinstack_grpc_server_requests_total{{{NS}}}[{RI}]))",
                    "{{component}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Server error ratio by component",
            [
                (
                    f"sum by (component) (rate(pinstack_grpc_server_requests_total{{{NS}, "
                    f'code=~"(?i)'
                    f'unknown|internal|unavailable|data_loss|deadline_exceeded"}}[{RI}])) / sum by '
                    f"(component) (rate(pinstack_grpc_server_requests_total{{{NS}}}[{RI}]))",
                    "{{component}}",
                )
            ],
            unit="percentunit",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "p99 RPC latency by component",
            [
                (
                    "histogram_quantile(0.99, sum by (le, component) "
                    f"(rate(pinstack_grpc_server_request_duration_seconds_bucket{{{NS}}}[{RI}])))",
                    "{{component}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )
    layout.row("Events")
    layout.add(
        timeseries(
            "Oldest outbox event by component",
            [
                (
                    f"max by (component) (pinstack_outbox_oldest_event_age_seconds{{{NS}}})",
                    "{{component}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Consumer lag by component and topic",
            [
                (
                    f"sum by (component, topic) (pinstack_consumer_lag{{{NS}}})",
                    "{{component}} {{topic}}",
                )
            ],
        ),
        w=8,
    )
    layout.add(
        timeseries(
            "Dead-lettered events",
            [
                (
                    f"sum by (component, topic) "
                    f"(increase(pinstack_dead_letter_total{{{NS}}}[$__range]))",
                    "{{component}} {{topic}}",
                )
            ],
        ),
        w=8,
    )
    layout.row("Business (per minute)")
    counters = [
        ("pinstack_registrations_total", "registrations"),
        ("pinstack_logins_total", "logins"),
        ("pinstack_posts_created_total", "posts"),
        ("pinstack_follows_total", "follows"),
        ("pinstack_notifications_created_total", "notifications"),
    ]
    layout.add(
        timeseries(
            "Activity",
            [(f"sum(rate({metric}{{{NS}}}[{RI}])) * 60", legend) for metric, legend in counters],
        ),
        w=16,
    )
    layout.add(
        timeseries(
            "Logins by result",
            [(f"sum by (result) (rate(pinstack_logins_total{{{NS}}}[{RI}])) * 60", "{{result}}")],
            stack=True,
        ),
        w=8,
    )
    return _dashboard("pinstack-overview", "Pinstack / Overview", None, layout)


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by file name."""
    out = {"overview.json": overview_dashboard(), "gateway.json": gateway_dashboard()}
    out.update({f"{comp}.json": service_dashboard(comp) for comp in SERVICES})
    return out


def render(board: dict[str, Any]) -> str:
    """The committed text of one dashboard."""
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def write(directory: Path = HERE) -> list[Path]:
    """Write every dashboard; return the files that changed."""
    changed = []
    for name, board in dashboards().items():
        path = directory / name
        text = render(board)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for changed_path in write():
        sys.stderr.write(f"wrote {changed_path.name}\n")
