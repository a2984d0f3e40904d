"""The relation service's business counters (platform metrics: ``pinstack_common.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["FOLLOWS"]

FOLLOWS = Counter("pinstack_follows_total", "Follows created.")
