"""Every Kubernetes permission the operator needs, in one table.

The operator's own client (:class:`pinstack_operator.kubeapi.KubeApi`, built with
``permissions=PERMISSIONS``) refuses any call this table does not declare, and
``tests/k8s/test_operator_rbac.py`` checks that ``charts/pinstack-operator/templates/rbac.yaml``
grants exactly these verbs, no more, and never ``list``/``watch`` on Secrets. The operator tests
run the operator with the chart's rendered RBAC against a real API server (RBAC authorizer on), so
what kopf itself calls is covered too.

Everything is namespaced: with ``watchNamespaces`` the chart grants it with a Role per namespace
and nothing cluster-wide. The leader Lease (scope ``OWN_NAMESPACE``) is granted by a Role in the
operator's own namespace only, whatever it watches. kopf's cluster scanning (a CRD and namespace
watch) is switched off
(:func:`pinstack_operator.handlers.configure_watching`); the PinstackStack API is found through
discovery (non-resource URLs every authenticated user may read), and so is the Prometheus
Operator's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "FORBIDDEN",
    "OWN_NAMESPACE",
    "PERMISSIONS",
    "WATCHED",
    "Permission",
    "grants",
    "permitted",
]


# Where a permission is granted: in every watched namespace (a ClusterRole when watching the
# whole cluster), or only in the operator's own namespace (its leader Lease lives there).
WATCHED = "watched"
OWN_NAMESPACE = "own-namespace"


@dataclass(frozen=True, kw_only=True)
class Permission:
    """``verbs`` on ``resource`` (``plural`` or ``plural/subresource``) of API ``group``."""

    group: str
    resource: str
    verbs: frozenset[str]
    why: str
    scope: str = WATCHED


def _permission(
    group: str, resource: str, verbs: Iterable[str], why: str, *, scope: str = WATCHED
) -> Permission:
    return Permission(group=group, resource=resource, verbs=frozenset(verbs), why=why, scope=scope)


PERMISSIONS: tuple[Permission, ...] = (
    _permission(
        "pinstack.io",
        "pinstackstacks",
        ["get", "list", "watch", "patch"],
        "kopf lists/watches stacks and patches its progress annotations and finalizer; "
        "each reconcile re-reads its stack (get)",
    ),
    _permission(
        "pinstack.io",
        "pinstackstacks/status",
        ["patch"],
        "status conditions, phase and migrated images (server-side apply)",
    ),
    _permission(
        "pinstack.io",
        "pinstackstacks/finalizers",
        ["update"],
        "Jobs and monitors carry an owner reference with blockOwnerDeletion to their stack "
        "(the OwnerReferencesPermissionEnforcement admission plugin checks this)",
    ),
    _permission(
        "",
        "secrets",
        ["get", "create", "patch", "delete"],
        "reads the admin Secret and its own Secrets by name; writes its own (server-side "
        "apply: patch, and create when missing); deletes them on reclaimPolicy: Delete. "
        "Never list or watch: that would read every Secret in the namespace",
    ),
    _permission(
        "",
        "serviceaccounts",
        ["create", "patch"],
        "the migration Jobs' own ServiceAccount per stack, without a token (server-side "
        "apply: patch, and create when missing)",
    ),
    _permission(
        "batch",
        "jobs",
        ["list", "watch", "create", "patch", "delete"],
        "migration Jobs: kopf watches them and reconcile lists them (both label-selected on "
        "the server), creates new ones, deletes superseded ones",
    ),
    _permission(
        "apps",
        "deployments",
        ["list", "watch"],
        "the chart's Deployments name the image each service is migrated with: kopf watches "
        "them and reconcile lists them (label-selected on the server); never written",
    ),
    _permission(
        "monitoring.coreos.com",
        "servicemonitors",
        ["list", "create", "patch", "delete"],
        "ServiceMonitors per service: apply, and prune by label selector",
    ),
    _permission(
        "monitoring.coreos.com",
        "prometheusrules",
        ["list", "create", "patch", "delete"],
        "the stack's PrometheusRule: apply, and prune by label selector",
    ),
    _permission(
        "",
        "events",
        ["create"],
        "Events on the stack: kopf's warnings, and the operator's Normal events for what it "
        "creates or changes",
    ),
    _permission(
        "coordination.k8s.io",
        "leases",
        ["get", "create", "update"],
        "leader election: one Lease in the operator's own namespace, so of several replicas "
        "only its holder acts (update with resourceVersion: a compare-and-swap)",
        scope=OWN_NAMESPACE,
    ),
)

# Verbs the operator must never hold, whatever is added above.
FORBIDDEN: frozenset[tuple[str, str, str]] = frozenset(
    {("", "secrets", "list"), ("", "secrets", "watch")}
)


def grants(
    permissions: Iterable[Permission] = PERMISSIONS, *, scope: str | None = None
) -> Iterator[tuple[str, str, str]]:
    """``(group, resource, verb)`` for every verb in ``permissions`` (of ``scope``, if given)."""
    for permission in permissions:
        if scope is not None and permission.scope != scope:
            continue
        for verb in sorted(permission.verbs):
            yield permission.group, permission.resource, verb


def permitted(
    group: str, resource: str, verb: str, permissions: Iterable[Permission] = PERMISSIONS
) -> bool:
    return any(p.group == group and p.resource == resource and verb in p.verbs for p in permissions)
