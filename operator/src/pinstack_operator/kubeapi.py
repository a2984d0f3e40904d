"""A thin, typed layer over kubernetes-asyncio's ``ApiClient`` for the few calls the operator
makes: server-side apply (fixed field manager), strategic-merge patch, get, list, delete, create
and replace (Events, the leader Lease), and API discovery.

Built with ``permissions`` (the operator passes :data:`pinstack_operator.rbac.PERMISSIONS`), it
refuses any call the table does not declare, before it reaches the API server: a new call fails
the tests until it is declared, and the chart's RBAC is checked against the same table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from pinstack_operator.rbac import Permission, permitted

__all__ = [
    "FIELD_MANAGER",
    "ConflictError",
    "KubeApi",
    "NotFoundError",
    "UndeclaredPermissionError",
    "connect",
    "load_configuration",
]

FIELD_MANAGER = "pinstack-operator"

_PLURALS = {
    "Secret": "secrets",
    "ServiceAccount": "serviceaccounts",
    "Job": "jobs",
    "Deployment": "deployments",
    "ServiceMonitor": "servicemonitors",
    "PrometheusRule": "prometheusrules",
    "PinstackStack": "pinstackstacks",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Namespace": "namespaces",
    "Event": "events",
    "Lease": "leases",
}
_CLUSTER_SCOPED = {"CustomResourceDefinition", "Namespace"}
_OBJECT_RESPONSE = {200: "object", 201: "object", 202: "object"}


class NotFoundError(LookupError):
    """The object does not exist."""


class ConflictError(RuntimeError):
    """409: the object exists (create) or changed since it was read (replace)."""


class UndeclaredPermissionError(PermissionError):
    """A call that ``pinstack_operator.rbac.PERMISSIONS`` (and so the chart's RBAC) lacks."""


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _path(api_version: str, kind: str, *, namespace: str | None, name: str | None) -> str:
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = root
    if namespace is not None and kind not in _CLUSTER_SCOPED:
        path += f"/namespaces/{namespace}"
    path += f"/{_PLURALS[kind]}"
    if name is not None:
        path += f"/{name}"
    return path


class KubeApi:
    """The operator's Kubernetes calls; every write is a server-side apply as ``FIELD_MANAGER``."""

    def __init__(
        self, *, api_client: k8s.ApiClient, permissions: Iterable[Permission] | None = None
    ) -> None:
        self._api = api_client
        self._permissions = None if permissions is None else tuple(permissions)

    def _require(self, api_version: str, kind: str, *verbs: str, subresource: str = "") -> None:
        if self._permissions is None:
            return
        group = _group(api_version)
        resource = _PLURALS[kind] + (f"/{subresource}" if subresource else "")
        missing = [v for v in verbs if not permitted(group, resource, v, self._permissions)]
        if missing:
            raise UndeclaredPermissionError(
                f"{', '.join(missing)} on {group or 'core'}/{resource} is not declared in "
                "pinstack_operator.rbac.PERMISSIONS (and so not granted by the chart's RBAC)"
            )

    async def close(self) -> None:
        await self._api.close()

    async def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        return (await self._request(method, path, **options))[0]

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: object = None,
        content_type: str = "application/json",
    ) -> tuple[dict[str, Any], int]:
        """The response object and its HTTP status (201: an apply created the object)."""
        try:
            result, status, _ = await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                response_types_map=_OBJECT_RESPONSE,
                auth_settings=["BearerToken"],
                _return_http_data_only=False,
            )
        except ApiException as error:
            if error.status == 404:
                raise NotFoundError(path) from error
            if error.status == 409:
                raise ConflictError(f"{path}: {error.reason}") from error
            raise
        if isinstance(result, str):
            return dict(json.loads(result)), int(status)
        return dict(result or {}), int(status)

    async def apply(
        self, manifest: Mapping[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply ``manifest`` (forcing conflicts: the operator owns these fields)."""
        return (await self.apply_reporting(manifest, subresource=subresource, dry_run=dry_run))[0]

    async def apply_reporting(
        self, manifest: Mapping[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """:meth:`apply`, and whether it created the object."""
        metadata = manifest["metadata"]
        # Apply creates a missing object: the API server then also checks ``create``.
        verbs = ("patch",) if subresource else ("patch", "create")
        self._require(manifest["apiVersion"], manifest["kind"], *verbs, subresource=subresource)
        path = _path(
            manifest["apiVersion"],
            manifest["kind"],
            namespace=metadata.get("namespace"),
            name=metadata["name"],
        )
        if subresource:
            path += f"/{subresource}"
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        result, status = await self._request(
            "PATCH",
            path,
            query=query,
            body=dict(manifest),  # serialised as JSON, which is valid YAML
            content_type="application/apply-patch+yaml",
        )
        return result, status == 201

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``manifest``; :class:`ConflictError` if it exists (a Lease won by another, or
        an Event: they are never updated)."""
        self._require(manifest["apiVersion"], manifest["kind"], "create")
        metadata = manifest["metadata"]
        path = _path(
            manifest["apiVersion"], manifest["kind"], namespace=metadata.get("namespace"), name=None
        )
        return await self._call("POST", path, query=[("fieldManager", FIELD_MANAGER)],
                                body=dict(manifest))  # fmt: skip

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace ``manifest`` if its ``metadata.resourceVersion`` is still current, else
        :class:`ConflictError` (optimistic concurrency: how a Lease changes hands safely)."""
        self._require(manifest["apiVersion"], manifest["kind"], "update")
        metadata = manifest["metadata"]
        path = _path(
            manifest["apiVersion"],
            manifest["kind"],
            namespace=metadata.get("namespace"),
            name=metadata["name"],
        )
        return await self._call("PUT", path, query=[("fieldManager", FIELD_MANAGER)],
                                body=dict(manifest))  # fmt: skip

    async def patch(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Strategic-merge-patch an existing built-in object (e.g. drop one owner reference)."""
        self._require(api_version, kind, "patch")
        return await self._call(
            "PATCH",
            _path(api_version, kind, namespace=namespace, name=name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=dict(patch),
            content_type="application/strategic-merge-patch+json",
        )

    async def get(
        self, api_version: str, kind: str, *, namespace: str | None, name: str
    ) -> dict[str, Any]:
        self._require(api_version, kind, "get")
        return await self._call("GET", _path(api_version, kind, namespace=namespace, name=name))

    async def find(
        self, api_version: str, kind: str, *, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return await self.get(api_version, kind, namespace=namespace, name=name)
        except NotFoundError:
            return None

    async def list(
        self, api_version: str, kind: str, *, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        self._require(api_version, kind, "list")
        query = [("labelSelector", label_selector)] if label_selector else []
        path = _path(api_version, kind, namespace=namespace, name=None)
        return list((await self._call("GET", path, query=query)).get("items", []))

    async def table(self, api_version: str, kind: str, *, namespace: str) -> dict[str, Any]:
        """The server-side table (what ``kubectl get`` prints: printer columns and cells)."""
        self._require(api_version, kind, "list")
        path = _path(api_version, kind, namespace=namespace, name=None)
        try:
            result = await self._api.call_api(
                path,
                "GET",
                header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
                response_types_map=_OBJECT_RESPONSE,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as error:
            if error.status == 404:
                raise NotFoundError(path) from error
            raise
        return dict(json.loads(result) if isinstance(result, str) else result)

    async def delete(
        self, api_version: str, kind: str, *, namespace: str | None, name: str
    ) -> bool:
        """Delete (background propagation); ``False`` if it was already gone."""
        self._require(api_version, kind, "delete")
        path = _path(api_version, kind, namespace=namespace, name=name)
        try:
            await self._call("DELETE", path, body={"propagationPolicy": "Background"})
        except NotFoundError:
            return False
        return True

    async def serves(self, api_version: str, plural: str) -> bool:
        """Whether the API server serves ``plural`` in ``api_version`` (discovery: a
        non-resource URL every authenticated user may read, so no RBAC rule is needed)."""
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = await self._call("GET", path)
        except NotFoundError:
            return False
        return any(item.get("name") == plural for item in listing.get("resources") or [])


async def load_configuration(*, kubeconfig: str | None) -> k8s.Configuration:
    """Client configuration from ``kubeconfig`` (a path), else in-cluster, else the default
    kubeconfig (``$KUBECONFIG`` / ``~/.kube/config``)."""
    configuration = k8s.Configuration()
    if kubeconfig:
        await k8s_config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration
        )
        return configuration
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config(client_configuration=configuration)
    return configuration


def connect(
    configuration: k8s.Configuration, *, permissions: Iterable[Permission] | None = None
) -> KubeApi:
    return KubeApi(api_client=k8s.ApiClient(configuration=configuration), permissions=permissions)
