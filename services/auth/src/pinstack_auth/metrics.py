"""The auth service's business counters.

Platform metrics live in ``pinstack_common.observability.metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["LOGINS", "REGISTRATIONS"]

REGISTRATIONS = Counter("pinstack_registrations_total", "Accounts created.")
LOGINS = Counter("pinstack_logins_total", "Login attempts by result.", ["result"])
