"""Normal Events on a PinstackStack for what the operator creates or changes.

kopf already posts a stack's warnings (a failed handler, a retry); these say what went well:
``kubectl describe pinstackstack`` lists every Secret, Job and monitor the operator created
(reason ``Created``) or changed (``Updated``), and every Kafka topic it created.

Kubernetes children are recorded where they are written: :class:`RecordingKubeApi` is the
operator's client, and an apply that created an object (HTTP 201), or changed fields the
operator manages (the ``time`` of its ``managedFields`` entry moved since its last apply of that
object), becomes an Event on the stack named by the object's ``pinstack.io/stack`` label. An
apply that changed nothing (the drift timer's usual pass) records nothing. Things outside
Kubernetes (topics) are recorded by the reconcile through :attr:`RecordingKubeApi.events`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.conditions import Clock, system_clock
from pinstack_operator.kubeapi import FIELD_MANAGER, KubeApi
from pinstack_operator.models import GROUP, KIND, VERSION
from pinstack_operator.rbac import Permission
from pinstack_operator.resources import STACK_LABEL, STACK_UID_ANNOTATION, StackRef

__all__ = ["EventRecorder", "RecordingKubeApi", "stack_of"]

logger = logging.getLogger(__name__)

COMPONENT = "pinstack-operator"


def _timestamp(clock: Clock) -> str:
    return clock().strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Posts ``Normal`` Events on stacks; a failure to post is logged, never raised (an Event
    is a report, not part of the work)."""

    def __init__(self, *, api: KubeApi, clock: Clock = system_clock) -> None:
        self._api = api
        self._clock = clock

    async def normal(self, stack: StackRef, *, reason: str, message: str) -> None:
        now = _timestamp(self._clock)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{stack.name}.", "namespace": stack.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": stack.name,
                "namespace": stack.namespace,
                "uid": stack.uid,
            },
            "type": "Normal",
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._api.create(event)
        except (ApiException, OSError, TimeoutError) as error:
            logger.warning("could not post the event %r on %s: %s", message, stack.name, error)


def stack_of(manifest: Mapping[str, Any]) -> StackRef | None:
    """The stack a child belongs to (its label, and its owner reference's or annotation's uid)."""
    metadata = manifest.get("metadata") or {}
    name = (metadata.get("labels") or {}).get(STACK_LABEL)
    owners = [ref for ref in metadata.get("ownerReferences") or [] if ref.get("kind") == KIND]
    uid = (
        owners[0]["uid"]
        if owners
        else (metadata.get("annotations") or {}).get(STACK_UID_ANNOTATION)
    )
    if not name or not uid or not metadata.get("namespace"):
        return None
    return StackRef(name=name, namespace=metadata["namespace"], uid=uid)


def _applied_at(obj: Mapping[str, Any]) -> str | None:
    """When the operator's applied fields last changed (its ``managedFields`` entry's time)."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if (
            entry.get("manager") == FIELD_MANAGER
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            return str(entry.get("time"))
    return None


class RecordingKubeApi(KubeApi):
    """The operator's client: every apply of a stack's child that created or changed it
    becomes a Normal Event on the stack."""

    def __init__(
        self,
        *,
        api_client: k8s.ApiClient,
        permissions: Iterable[Permission] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__(api_client=api_client, permissions=permissions)
        self.events = EventRecorder(api=self, clock=clock)
        # (namespace, stack, kind, name) -> when our fields last changed, as of our last apply.
        self._applied: dict[tuple[str, str, str, str], str | None] = {}

    async def apply(
        self, manifest: Mapping[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        result, created = await self.apply_reporting(
            manifest, subresource=subresource, dry_run=dry_run
        )
        stack = None if subresource or dry_run else stack_of(manifest)
        if stack is None:
            return result
        what = f"{manifest['kind']} {manifest['metadata']['name']}"
        key = (
            stack.namespace,
            stack.name,
            str(manifest["kind"]),
            str(manifest["metadata"]["name"]),
        )
        known = key in self._applied
        previous = self._applied.get(key)
        self._applied[key] = _applied_at(result)
        if created:
            await self.events.normal(stack, reason="Created", message=f"Created {what}")
        elif known and previous != self._applied[key]:
            await self.events.normal(stack, reason="Updated", message=f"Updated {what}")
        return result

    def forget_stack(self, namespace: str, name: str) -> None:
        """Drop what was remembered of a deleted stack's children."""
        for key in [k for k in self._applied if k[:2] == (namespace, name)]:
            del self._applied[key]
