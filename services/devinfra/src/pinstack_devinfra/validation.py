"""Offline validation of Kubernetes objects: built-in kinds against the schemas bundled by
``kubernetes-validate`` (strict: unknown fields are errors), custom resources against their
CRD's ``openAPIV3Schema`` (jsonschema; structural schema, not CEL rules)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from pinstack_devinfra.commands import ToolError
from pinstack_devinfra.helm import KUBE_VERSION

__all__ = ["EXTERNAL_KINDS", "crd_schema", "validate_custom_resource", "validate_objects"]

# Kinds whose schemas kubernetes-validate cannot know; each is checked by a dedicated test
# (PrometheusRule: promtool; ServiceMonitor: selector and port against the rendered Service;
# PodMonitor: selector and port against the rendered Deployment's pods).
EXTERNAL_KINDS = frozenset({"monitoring.coreos.com/v1/ServiceMonitor",
                            "monitoring.coreos.com/v1/PodMonitor",
                            "monitoring.coreos.com/v1/PrometheusRule"})  # fmt: skip


def crd_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of one served version of a CRD."""
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise ToolError(f"CRD {crd['metadata']['name']} has no version {version}")


def _openapi_to_jsonschema(node: Any) -> Any:
    """Translate the OpenAPI bits jsonschema does not know (``nullable``) and drop ``x-*``."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-")}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _crd_of(obj: Mapping[str, Any], crds: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    group = str(obj.get("apiVersion", "")).partition("/")[0]
    for crd in crds:
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["kind"] == obj.get("kind"):
            return crd
    return None


def validate_custom_resource(obj: Mapping[str, Any], crds: Iterable[Mapping[str, Any]]) -> None:
    """Validate a custom resource against the structural schema of its CRD (not CEL rules)."""
    crd = _crd_of(obj, crds)
    if crd is None:
        raise ToolError(f"no CRD for {obj['apiVersion']} {obj['kind']}")
    # jsonschema (a dependency of kubernetes-validate) ships no type stubs: load it untyped.
    jsonschema = importlib.import_module("jsonschema")
    version = str(obj["apiVersion"]).partition("/")[2]
    schema = _openapi_to_jsonschema(crd_schema(crd, version))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(dict(obj)), key=lambda e: e.path)
    if errors:
        raise ToolError(
            f"{obj['kind']}/{obj.get('metadata', {}).get('name')}: "
            + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
        )


def validate_objects(
    objects: Iterable[Mapping[str, Any]],
    *,
    crds: Iterable[Mapping[str, Any]] = (),
    kube_version: str = KUBE_VERSION,
) -> list[str]:
    """Validate every object offline; return the problems (empty when all are valid).

    Built-in kinds go against the Kubernetes schemas in strict mode (unknown fields are errors);
    custom resources against their CRD; Prometheus Operator kinds are left to dedicated checks.
    """
    import kubernetes_validate

    crd_list = list(crds)
    problems: list[str] = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if f"{obj.get('apiVersion')}/{obj.get('kind')}" in EXTERNAL_KINDS:
            continue
        if _crd_of(obj, crd_list) is not None:
            try:
                validate_custom_resource(obj, crd_list)
            except ToolError as exc:
                problems.append(str(exc))
            continue
        try:
            kubernetes_validate.validate(dict(obj), kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {exc}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: no schema ({exc})")
    return problems
