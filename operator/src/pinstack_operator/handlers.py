"""kopf wiring: one reconcile for create/update/resume, a drift timer, events of migration Jobs
and of the chart's Deployments (a changed image), reclaim; every pass is timed and counted in
``pinstack_operator.metrics``, and each stack's status, as watched, feeds its per-stack series.

Handlers are registered on a registry built per operator run (``build_registry``), so the
timer interval is injected and tests can run several operators' worth of configurations.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s

from pinstack_operator.conditions import Clock, system_clock
from pinstack_operator.config import OperatorConfig
from pinstack_operator.events import RecordingKubeApi
from pinstack_operator.kubeapi import KubeApi, load_configuration
from pinstack_operator.metrics import OperatorMetrics
from pinstack_operator.migrations import DEPLOYMENT_WATCH_SELECTOR, JOB_WATCH_SELECTOR
from pinstack_operator.models import GROUP, KIND, PLURAL, VERSION
from pinstack_operator.rbac import PERMISSIONS
from pinstack_operator.reconcile import Outcome, ReclaimError, Reconciler
from pinstack_operator.resources import COMPONENT_LABEL, MANAGED_BY, PART_OF_LABEL, STACK_LABEL

__all__ = ["ANNOTATION_PREFIX", "FINALIZER", "build_registry", "configure_watching"]

ANNOTATION_PREFIX = "pinstack.io"
FINALIZER = "pinstack.io/finalizer"

logger = logging.getLogger(__name__)


def configure_watching(settings: kopf.OperatorSettings) -> None:
    """What kopf watches, and how narrowly (the RBAC in ``pinstack_operator.rbac`` relies on it).

    - Jobs and Deployments: server-side label selectors, so the API server sends only the
      operator's migration Jobs and the chart's Deployments (kopf's ``labels=`` on a handler
      filters only after receiving every object).
    - No cluster scanning: kopf would otherwise watch every CRD (and, namespaced, list and watch
      namespaces) to notice resources appearing later. The CRD is installed with the operator
      (Helm applies CRDs before Deployments; ``manifests/operator.yaml`` likewise) and the
      startup handler waits for it, so the initial discovery finds it; namespaces are exact
      names.
    """
    settings.watching.label_selectors["batch", "v1", "jobs"] = JOB_WATCH_SELECTOR
    settings.watching.label_selectors["apps", "v1", "deployments"] = DEPLOYMENT_WATCH_SELECTOR
    settings.scanning.disabled = True


def _images(deployment: Mapping[str, Any]) -> tuple[str, ...]:
    pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return tuple(sorted({str(c.get("image")) for c in containers}))


def _result(outcome: Outcome) -> str:
    return "ready" if outcome.ready else "not_ready"


def _register_child_watches(
    registry: kopf.OperatorRegistry, state: dict[str, Reconciler], metrics: OperatorMetrics
) -> None:
    """Events of a stack's migration Jobs and of the chart's Deployments reconcile the stack."""

    async def reconcile_stack_of(body: kopf.Body) -> None:
        """Reconcile the stack a Job or Deployment belongs to (its ``pinstack.io/stack``)."""
        stack_name = body.get("metadata", {}).get("labels", {}).get(STACK_LABEL)
        namespace = body.get("metadata", {}).get("namespace")
        if not stack_name or not namespace or "reconciler" not in state:
            return
        stack = await state["reconciler"].api.find(
            f"{GROUP}/{VERSION}", KIND, namespace=namespace, name=stack_name
        )
        if stack is None or stack["metadata"].get("deletionTimestamp"):
            return
        with metrics.reconcile("child") as current:
            current.result = _result(await state["reconciler"].reconcile(stack))

    @kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        labels={"app.kubernetes.io/managed-by": MANAGED_BY, COMPONENT_LABEL: "migration"},
    )
    async def migration_job_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        """A Job's status moved: reconcile its stack now rather than at the next retry."""
        if type is None or type == "DELETED":
            return
        await reconcile_stack_of(body)

    # Deployment -> the images it runs, as last seen (a rollout's many status updates are not
    # a reason to reconcile; a changed image is).
    deployment_images: dict[str, tuple[str, ...]] = {}

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        labels={PART_OF_LABEL: "pinstack", STACK_LABEL: kopf.PRESENT},
    )
    async def deployment_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        """A chart Deployment's image changed (``helm upgrade``/``rollback``): migrate now, so
        its new pods (held by their ``wait-for-schema`` init container) start soon."""
        uid = str(body.get("metadata", {}).get("uid"))
        if type == "DELETED":
            deployment_images.pop(uid, None)
            return
        images = _images(body)
        seen = deployment_images.get(uid)
        deployment_images[uid] = images
        if seen == images or (type is None and seen is None):
            return  # no change, or first sight in the initial listing (resume reconciles those)
        await reconcile_stack_of(body)


def _register_lifecycle(
    registry: kopf.OperatorRegistry,
    state: dict[str, Reconciler],
    *,
    config: OperatorConfig,
    clock: Clock,
) -> None:
    """Log in as the kubeconfig says; on startup, the settings and the reconciler (once the CRD
    is served); on cleanup, close its client."""

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        configuration = await load_configuration(kubeconfig=config.kubeconfig)
        header = await configuration.get_api_key_with_prefix("BearerToken")
        token = header.split(" ", 1)[-1] if header else None
        return kopf.ConnectionInfo(
            server=configuration.host or "",
            ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl,
            token=token,
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
        )

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # A strict status schema prunes kopf's own status fields: keep them in annotations.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings.persistence.finalizer = FINALIZER
        settings.posting.level = logging.WARNING
        configure_watching(settings)
        settings.watching.server_timeout = 120
        settings.networking.request_timeout = 60
        api = RecordingKubeApi(
            api_client=k8s.ApiClient(
                configuration=await load_configuration(kubeconfig=config.kubeconfig)
            ),
            permissions=PERMISSIONS,
            clock=clock,
        )
        try:
            served = await api.serves(f"{GROUP}/{VERSION}", PLURAL)
        except BaseException:
            await api.close()
            raise
        if not served:  # kopf discovers resources once (no scanning): the CRD must be there
            await api.close()
            raise kopf.TemporaryError(
                f"the {PLURAL}.{GROUP} CRD is not installed (yet)", delay=config.retry_seconds
            )
        state["reconciler"] = Reconciler(api=api, clock=clock, events=api.events)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if "reconciler" in state:
            api: KubeApi = state.pop("reconciler").api
            await api.close()


def build_registry(
    *,
    config: OperatorConfig,
    clock: Clock = system_clock,
    metrics: OperatorMetrics | None = None,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    metrics = metrics or OperatorMetrics()
    state: dict[str, Reconciler] = {}

    def reconciler() -> Reconciler:
        return state["reconciler"]

    _register_lifecycle(registry, state, config=config, clock=clock)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    async def reconcile(body: kopf.Body, retry: int, **_: Any) -> None:
        with metrics.reconcile("change") as current:
            outcome = await reconciler().reconcile(body)
            current.result = _result(outcome)
        if outcome.transient:
            # Infrastructure not there yet: retry with backoff (the drift timer is the slow
            # path). Running migrations are not retried here (their Job events trigger a
            # reconcile), nor what waits for the user (a failed migration, a foreign owner).
            messages = "; ".join(f"{c.type}: {c.message}" for c in outcome.transient)
            raise kopf.TemporaryError(f"not ready yet: {messages}", delay=config.retry_delay(retry))

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=config.resync_seconds,
        initial_delay=config.resync_seconds,
        when=lambda body, **_: not body.get("metadata", {}).get("deletionTimestamp"),
    )
    async def resync(body: kopf.Body, **_: Any) -> None:
        with metrics.reconcile("resync") as current:
            current.result = _result(await reconciler().reconcile(body))

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def stack_seen(body: kopf.Body, type: str | None, **_: Any) -> None:
        """The status the operator wrote, as the watch delivers it: the per-stack series."""
        metrics.observe_stack(body, deleted=type == "DELETED")
        api = state["reconciler"].api if "reconciler" in state else None
        if type == "DELETED" and isinstance(api, RecordingKubeApi):
            api.forget_stack(body["metadata"]["namespace"], body["metadata"]["name"])

    _register_child_watches(registry, state, metrics)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def reclaim(body: kopf.Body, retry: int, **_: Any) -> None:
        """Keep the finalizer until ``reclaimPolicy`` is carried out; retry without limit.

        A failure is reported as the ``ReclaimFailed`` condition rather than given up on: giving
        up would release the finalizer and leak databases, topics and credentials. To let go
        of a stack whose reclaim cannot succeed, set its ``reclaimPolicy`` to ``Retain``.
        """
        try:
            with metrics.reconcile("reclaim") as current:
                current.result = "done"
                done = await reconciler().reclaim(body)
        except ReclaimError as error:
            logger.warning("reclaiming %s failed: %s", body.get("metadata", {}).get("name"), error)
            await reconciler().report_reclaim_failure(body, error)
            raise kopf.TemporaryError(str(error), delay=config.retry_delay(retry)) from error
        if done:
            logger.info("reclaimed (%s): %s", body["spec"].get("reclaimPolicy"), ", ".join(done))

    return registry
