"""Loopback ports for the servers started here and for tests running side by side."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["bindable", "free_port", "port_open"]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def bindable(port: int) -> bool:
    """Nobody holds ``port`` on 127.0.0.1 right now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nobody listens on, chosen *below* the kernel's ephemeral range.

    A port the kernel handed out for ``bind(0)`` can be handed out again, as the local port of
    any outgoing connection, between this call and the caller's own bind: the contract stack
    once lost its post service that way ("Failed to bind to address"). Outside the ephemeral
    range only another free_port() caller can take it, and the random pick makes that unlikely.
    """
    low, _high = _ephemeral_range()
    floor = 10_000 if low > 10_000 + 1024 else 1024
    for _ in range(200):
        port = random.randint(floor, max(floor, low - 1))  # noqa: S311 - a port number, not a secret
        if bindable(port):
            return port
    with socket.socket() as probe:  # an odd port range: let the kernel choose
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, *, timeout: float = 0.5) -> bool:
    """Something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
