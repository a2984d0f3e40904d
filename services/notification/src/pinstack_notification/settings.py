"""Notification service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pydantic import Field

from pinstack_common.settings import ServiceSettings
from pinstack_common.validation import PAGE_LIMIT_MAX

__all__ = ["NotificationSettings"]


class NotificationSettings(ServiceSettings):
    grpc_port: int = 50055
    feed_max_limit: int = PAGE_LIMIT_MAX
    # ``PINSTACK_RATE_LIMITS_ENABLED=false`` switches every limit off (benchmarks, load tests).
    # Per caller, in the ``limits`` notation; several limits separated by ``;``.
    send_rate_limit: str = "30/10second;300/hour"
    # Live subscribers whose socket falls this far behind lose the oldest pushes, not memory.
    stream_queue_size: int = 100
    # Live pushes cross replicas through this Redis stream (every replica reads all of it),
    # trimmed to about this many entries.
    push_stream: str = "pinstack:notification:push"
    push_stream_maxlen: int = Field(default=10_000, ge=100)
