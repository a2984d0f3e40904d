"""The notification service's business counters.

Platform metrics live in ``pinstack_common.observability.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["NOTIFICATIONS_CREATED", "NOTIFICATION_PUSHES"]

NOTIFICATIONS_CREATED = Counter("pinstack_notifications_created_total", "Notifications created.")
NOTIFICATION_PUSHES = Counter(
    "pinstack_notification_pushes_total",
    "Live pushes through the shared Redis stream: published, dropped (Redis down or stopping), "
    "delivered (to a local stream), duplicate (a repeated entry skipped).",
    ["result"],
)
