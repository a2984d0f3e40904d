"""The relation service's business counters.

Platform metrics live in ``pinstack_common.observability.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["FOLLOWS"]

FOLLOWS = Counter("pinstack_follows_total", "Follows created.")
