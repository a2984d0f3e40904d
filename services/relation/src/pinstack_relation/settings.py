"""Relation service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pinstack_common.settings import ServiceSettings

__all__ = ["RelationSettings"]


class RelationSettings(ServiceSettings):
    grpc_port: int = 50054
    list_max_limit: int = 100
