"""Helm, offline: ``helm template`` / ``helm lint`` for a pinned Kubernetes version, and the
standalone ``helm-unittest`` runner. Both binaries come from the Go module proxy, cached."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.commands import run
from pinstack_devinfra.gotools import build_wrapper_binary, helm_binary

__all__ = [
    "HELM_UNITTEST_VERSION",
    "KUBE_VERSION",
    "helm_lint",
    "helm_template",
    "helm_template_objects",
    "helm_unittest",
]

HELM_UNITTEST_VERSION = "v1.1.2"
# The Kubernetes version charts are rendered and validated for (the oldest we support).
KUBE_VERSION = "1.30.0"


def helm_unittest() -> Path:
    """The standalone ``helm-unittest`` runner, built through a wrapper module and cached.

    helm-unittest's go.mod replaces ``vmware-labs/yaml-jsonpath`` with its own fork, which makes a
    plain ``go install`` refuse it; the wrapper repeats that replace.
    """
    return build_wrapper_binary(
        name="helm-unittest",
        version=HELM_UNITTEST_VERSION,
        requires={"github.com/helm-unittest/helm-unittest": HELM_UNITTEST_VERSION},
        package="github.com/helm-unittest/helm-unittest/cmd/helm-unittest",
        replaces={
            "github.com/vmware-labs/yaml-jsonpath v0.3.2": (
                "github.com/helm-unittest/yaml-jsonpath v0.4.0"
            )
        },
        go_directive="1.26.0",
    )


def _flatten_docs(text: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if doc.get("kind") == "List":
            objects.extend(item for item in doc.get("items", []) if item)
        else:
            objects.append(doc)
    return objects


def helm_template(
    chart: Path,
    *,
    release: str = "pinstack",
    namespace: str = "pinstack",
    values: Iterable[Path] = (),
    set_values: Mapping[str, str] | None = None,
    api_versions: Iterable[str] = (),
    include_crds: bool = False,
    kube_version: str = KUBE_VERSION,
) -> str:
    """``helm template`` → the rendered YAML text."""
    args: list[str | Path] = [helm_binary(), "template", release, chart,
                              "--namespace", namespace, "--kube-version", kube_version]  # fmt: skip
    for path in values:
        args += ["--values", path]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    for api in api_versions:
        args += ["--api-versions", api]
    if include_crds:
        args.append("--include-crds")
    return run(args).stdout


def helm_template_objects(chart: Path, **kwargs: Any) -> list[dict[str, Any]]:
    """``helm template`` → the rendered objects."""
    return _flatten_docs(helm_template(chart, **kwargs))


def helm_lint(chart: Path, *, values: Iterable[Path] = (), kube_version: str = KUBE_VERSION) -> str:
    """``helm lint --strict``; raises :class:`ToolError` with helm's output on failure."""
    args: list[str | Path] = [helm_binary(), "lint", "--strict", chart,
                              "--kube-version", kube_version]  # fmt: skip
    for path in values:
        args += ["--values", path]
    return run(args).stdout
