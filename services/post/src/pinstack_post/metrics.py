"""The post service's business counters.

Platform metrics live in ``pinstack_common.observability.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["POSTS_CREATED"]

POSTS_CREATED = Counter("pinstack_posts_created_total", "Posts created.")
