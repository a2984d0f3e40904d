"""The registry of Pinstack's gRPC services: how to build, configure and migrate each one.

The CLI is the composition root of every process, so this is the only module that knows all
services. Adding a service is one entry in :data:`SERVICES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pinstack_common.events import EventTransport
from pinstack_common.lifecycle import Component
from pinstack_common.settings import ServiceSettings

__all__ = ["SERVICES", "ServiceSpec"]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Where a service lives; ``package`` holds ``app.py``, ``settings.py`` and ``migrations/``."""

    name: str
    settings_class: str
    default_port: int

    @property
    def package(self) -> str:
        return f"pinstack_{self.name}"

    @property
    def database(self) -> str:
        return f"pinstack_{self.name}"

    @property
    def addr_setting(self) -> str:
        return f"{self.name}_addr"

    def settings(self, **overrides: Any) -> ServiceSettings:
        module = importlib.import_module(f"{self.package}.settings")
        settings: ServiceSettings = getattr(module, self.settings_class)(**overrides)
        return settings

    def component(
        self, settings: ServiceSettings, *, transport: EventTransport | None = None
    ) -> Component:
        """Build the service; ``transport`` is shared in embedded mode, else it opens Kafka."""
        module = importlib.import_module(f"{self.package}.app")
        component: Component = module.create_component(settings, transport=transport)
        return component


# Start order matters only for readiness output: services reach each other lazily.
SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(name="user", settings_class="UserSettings", default_port=50051),
        ServiceSpec(name="auth", settings_class="AuthSettings", default_port=50052),
        ServiceSpec(name="post", settings_class="PostSettings", default_port=50053),
        ServiceSpec(name="relation", settings_class="RelationSettings", default_port=50054),
        ServiceSpec(name="notification", settings_class="NotificationSettings", default_port=50055),
    )
}
