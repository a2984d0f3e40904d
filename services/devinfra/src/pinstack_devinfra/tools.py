"""Packaging and observability tooling: helm, helm-unittest, promtool, offline validation.

Every binary is fetched once and cached under :func:`pinstack_devinfra.cache.cache_dir`:

- ``helm`` (v3) and ``helm-unittest`` from the Go module proxy. helm-unittest's go.mod carries a
  ``replace`` directive, so it is built through a small wrapper module of our own;
- ``promtool`` from Debian's ``prometheus`` package (``apt-get download`` + ``dpkg-deb -x``, no
  installation, no root needed beyond what ``apt-get download`` needs).

Validation is offline: rendered Kubernetes objects against the schemas bundled by
``kubernetes-validate``, custom resources against their CRD's ``openAPIV3Schema`` (jsonschema).

Files that Helm can only read from inside a chart (the CRD, the Grafana dashboards, the alert
rules) have one source of truth at the top of the repository and are *copied* into the charts by
``python -m pinstack_devinfra.tools sync``; tests fail when a copy is stale.
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.cache import cache_dir

__all__ = [
    "HELM_UNITTEST_VERSION",
    "HELM_VERSION",
    "KUBE_VERSION",
    "OPERATOR_NAMESPACE",
    "ToolError",
    "chart_copies",
    "crd_schema",
    "helm",
    "helm_lint",
    "helm_template",
    "helm_unittest",
    "promtool",
    "promtool_check_rules",
    "promtool_test_rules",
    "render_operator_manifest",
    "repo_root",
    "stale_chart_copies",
    "sync_chart_copies",
    "validate_custom_resource",
    "validate_objects",
]

HELM_VERSION = "v3.21.4"
HELM_UNITTEST_VERSION = "v1.1.2"
# The Kubernetes version charts are rendered and validated for (the oldest we support).
KUBE_VERSION = "1.30.0"
OPERATOR_NAMESPACE = "pinstack-system"
OPERATOR_RELEASE = "pinstack-operator"

# Kinds whose schemas kubernetes-validate cannot know; each is checked by a dedicated test
# (PrometheusRule: promtool; ServiceMonitor: selector and port against the rendered Service).
EXTERNAL_KINDS = frozenset({"monitoring.coreos.com/v1/ServiceMonitor",
                            "monitoring.coreos.com/v1/PrometheusRule"})  # fmt: skip


class ToolError(RuntimeError):
    """A tool could not be installed or failed; the message says what to do."""


def _log(message: str) -> None:
    sys.stderr.write(f"[pinstack-devinfra] {message}\n")
    sys.stderr.flush()


def repo_root() -> Path:
    """The checkout this package is installed from (editable install): the dir with uv.lock."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "uv.lock").exists() and (parent / "services").is_dir():
            return parent
    raise ToolError("cannot find the repository root (a directory with uv.lock and services/)")


@contextmanager
def _lock(directory: Path) -> Iterator[None]:
    """Serialise installs of one tool across processes (parallel test sessions)."""
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise ToolError(
            f"`{' '.join(str(a) for a in args)}` failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def _go() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise ToolError(
            "the Go toolchain (>= 1.26) is needed to build helm and helm-unittest from the Go "
            "module proxy: install it (official tarball into /usr/local/go) and put `go` on PATH"
        )
    return found


_GO_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=mod"}


# --------------------------------------------------------------------------- binaries


def helm() -> Path:
    """The ``helm`` v3 CLI (Go module proxy, cached). Pass ``--kube-version`` to it."""
    try:
        from pinstack_devinfra.gotools import helm_binary
    except ImportError:  # the shared Go helper is not there: install it ourselves
        target = cache_dir("bin", f"helm-{HELM_VERSION}")
        binary = target / "helm"
        if binary.exists():
            return binary
        with _lock(target):
            if not binary.exists():
                _log(f"installing helm {HELM_VERSION} from the Go module proxy")
                staging = target / ".gobin"
                staging.mkdir(exist_ok=True)
                _run(
                    [_go(), "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
                    cwd=target,
                    env={**_GO_ENV, "GOFLAGS": "-buildvcs=false", "GOBIN": str(staging)},
                )
                os.replace(staging / "helm", binary)
        return binary
    return helm_binary(HELM_VERSION)


def helm_unittest() -> Path:
    """The standalone ``helm-unittest`` runner, built through a wrapper module and cached.

    helm-unittest's go.mod replaces ``vmware-labs/yaml-jsonpath`` with its own fork, which makes a
    plain ``go install`` refuse it; our wrapper repeats that replace.
    """
    target = cache_dir("bin", f"helm-unittest-{HELM_UNITTEST_VERSION}")
    binary = target / "helm-unittest"
    if binary.exists():
        return binary
    with _lock(target):
        if binary.exists():
            return binary
        _log(f"building helm-unittest {HELM_UNITTEST_VERSION} (a minute or two the first time)")
        work = cache_dir("go-wrappers", f"helm-unittest-{HELM_UNITTEST_VERSION}")
        (work / "go.mod").write_text(
            "module pinstack.local/wrapper\n\ngo 1.26.0\n\n"
            f"require github.com/helm-unittest/helm-unittest {HELM_UNITTEST_VERSION}\n\n"
            "replace github.com/vmware-labs/yaml-jsonpath v0.3.2 => "
            "github.com/helm-unittest/yaml-jsonpath v0.4.0\n"
        )
        package = "github.com/helm-unittest/helm-unittest/cmd/helm-unittest"
        (work / "tools.go").write_text(
            f'//go:build tools\n\npackage tools\n\nimport _ "{package}"\n'
        )
        _run([_go(), "mod", "tidy"], cwd=work, env=_GO_ENV)
        partial = target / ".helm-unittest.partial"
        _run([_go(), "build", "-trimpath", "-o", partial, package], cwd=work, env=_GO_ENV)
        os.replace(partial, binary)
    return binary


def promtool() -> Path:
    """``promtool`` from Debian's ``prometheus`` package, extracted (not installed) and cached."""
    target = cache_dir("bin", "promtool-debian")
    binary = target / "promtool"
    if binary.exists():
        return binary
    with _lock(target):
        if binary.exists():
            return binary
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise ToolError(
                "promtool is needed for the alert-rule tests: on Debian/Ubuntu it is fetched "
                "with `apt-get download prometheus`; elsewhere put a promtool (Prometheus 2.x) "
                f"binary at {binary}"
            )
        _log("fetching promtool from Debian's prometheus package")
        with tempfile.TemporaryDirectory() as scratch:
            result = _run(["apt-get", "download", "prometheus"], cwd=Path(scratch), check=False)
            if result.returncode != 0 and os.geteuid() == 0:
                # A fresh machine (or container) often has no package lists yet.
                _log("apt-get download failed; refreshing the package lists (apt-get update)")
                _run(["apt-get", "update", "-qq"], check=False)
                result = _run(["apt-get", "download", "prometheus"], cwd=Path(scratch), check=False)
            debs = list(Path(scratch).glob("prometheus_*.deb"))
            if result.returncode != 0 or not debs:
                raise ToolError(
                    "`apt-get download prometheus` failed; run `apt-get update` (as root) once "
                    f"and retry:\n{result.stderr[-2000:]}"
                )
            extracted = Path(scratch, "x")
            _run(["dpkg-deb", "-x", debs[0], extracted])
            partial = target / ".promtool.partial"
            shutil.copy2(extracted / "usr" / "bin" / "promtool", partial)
            os.replace(partial, binary)
    return binary


# --------------------------------------------------------------------------- helm


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
    args: list[str | Path] = [helm(), "template", release, chart, "--namespace", namespace,
                              "--kube-version", kube_version]  # fmt: skip
    for path in values:
        args += ["--values", path]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    for api in api_versions:
        args += ["--api-versions", api]
    if include_crds:
        args.append("--include-crds")
    return _run(args).stdout


def helm_template_objects(chart: Path, **kwargs: Any) -> list[dict[str, Any]]:
    """``helm template`` → the rendered objects."""
    return _flatten_docs(helm_template(chart, **kwargs))


def helm_lint(chart: Path, *, values: Iterable[Path] = (), kube_version: str = KUBE_VERSION) -> str:
    """``helm lint --strict``; raises :class:`ToolError` with helm's output on failure."""
    args: list[str | Path] = [helm(), "lint", "--strict", chart, "--kube-version", kube_version]
    for path in values:
        args += ["--values", path]
    return _run(args).stdout


# --------------------------------------------------------------------------- validation


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


def validate_custom_resource(obj: Mapping[str, Any], crds: Iterable[Mapping[str, Any]]) -> None:
    """Validate a custom resource against the structural schema of its CRD (not CEL rules)."""
    # jsonschema (a dependency of kubernetes-validate) ships no type stubs: load it untyped.
    jsonschema = importlib.import_module("jsonschema")
    group, _, version = str(obj["apiVersion"]).partition("/")
    for crd in crds:
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["kind"] == obj["kind"]:
            schema = _openapi_to_jsonschema(crd_schema(crd, version))
            errors = sorted(
                jsonschema.Draft7Validator(schema).iter_errors(dict(obj)), key=lambda e: e.path
            )
            if errors:
                raise ToolError(
                    f"{obj['kind']}/{obj.get('metadata', {}).get('name')}: "
                    + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
                )
            return
    raise ToolError(f"no CRD for {obj['apiVersion']} {obj['kind']}")


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
        if any(
            c["spec"]["names"]["kind"] == obj.get("kind")
            and str(obj.get("apiVersion", "")).startswith(c["spec"]["group"] + "/")
            for c in crd_list
        ):
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


# --------------------------------------------------------------------------- promtool


def promtool_check_rules(*files: Path) -> str:
    """``promtool check rules`` (syntax, PromQL, templates)."""
    return _run([promtool(), "check", "rules", *files]).stdout


def promtool_test_rules(*files: Path, cwd: Path | None = None) -> str:
    """``promtool test rules`` (the rule unit tests)."""
    return _run([promtool(), "test", "rules", *files], cwd=cwd).stdout


# --------------------------------------------------------------------------- chart copies


@dataclass(frozen=True)
class Copy:
    """One file with its source of truth outside a chart and its copy inside."""

    source: Path
    copy: Path


def chart_copies(root: Path | None = None) -> list[Copy]:
    """Every file copied into a chart: the CRD, the dashboards, the alert rules."""
    root = root or repo_root()
    copies = [
        Copy(
            root / "crds" / "pinstackstack.yaml",
            root / "charts" / "pinstack-operator" / "crds" / "pinstackstack.yaml",
        )
    ]
    copies += [
        Copy(path, root / "charts" / "pinstack" / "files" / "dashboards" / path.name)
        for path in sorted((root / "dashboards").glob("*.json"))
    ]
    copies += [
        Copy(path, root / "charts" / "pinstack" / "files" / "alerts" / path.name)
        for path in sorted((root / "alerts").glob("*.rules.yaml"))
    ]
    # The operator ships the same rules in the PrometheusRule it manages (package data).
    copies += [
        Copy(path, root / "operator" / "src" / "pinstack_operator" / "alerts" / path.name)
        for path in sorted((root / "alerts").glob("*.rules.yaml"))
    ]
    return copies


def _orphans(root: Path) -> list[Path]:
    """Copies in the charts whose source is gone."""
    wanted = {c.copy for c in chart_copies(root)}
    found = [
        *(root / "charts" / "pinstack" / "files" / "dashboards").glob("*.json"),
        *(root / "charts" / "pinstack" / "files" / "alerts").glob("*.rules.yaml"),
        *(root / "operator" / "src" / "pinstack_operator" / "alerts").glob("*.rules.yaml"),
    ]
    return sorted(p for p in found if p not in wanted)


def stale_chart_copies(root: Path | None = None) -> list[str]:
    """Describe every copy that differs from its source (or should not exist)."""
    root = root or repo_root()
    problems = []
    for c in chart_copies(root):
        if not c.source.exists():
            problems.append(f"{c.source.relative_to(root)} is missing")
        elif not c.copy.exists() or not filecmp.cmp(c.source, c.copy, shallow=False):
            problems.append(f"{c.copy.relative_to(root)} differs from {c.source.relative_to(root)}")
    problems += [f"{p.relative_to(root)} has no source any more" for p in _orphans(root)]
    return problems


def sync_chart_copies(root: Path | None = None) -> list[Path]:
    """Refresh every copy; remove orphans; return what changed."""
    root = root or repo_root()
    changed = []
    for c in chart_copies(root):
        if not c.source.exists():
            continue
        if not c.copy.exists() or not filecmp.cmp(c.source, c.copy, shallow=False):
            c.copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(c.source, c.copy)
            changed.append(c.copy)
    for orphan in _orphans(root):
        orphan.unlink()
        changed.append(orphan)
    return changed


# --------------------------------------------------------------------------- manifests


OPERATOR_MANIFEST_HEADER = (
    "# Rendered operator install: CRD, RBAC and the operator Deployment.\n"
    "# Generated by `uv run python -m pinstack_devinfra.tools render` from\n"
    "# charts/pinstack-operator; do not edit by hand (a test checks it is fresh).\n"
    "# Install: kubectl apply --server-side -f manifests/operator.yaml\n"
)


def render_operator_manifest(root: Path | None = None) -> str:
    """The text of ``manifests/operator.yaml``: the operator chart with its defaults, and CRDs."""
    root = root or repo_root()
    namespace_doc = (
        f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATOR_NAMESPACE}\n"
    )
    rendered = helm_template(
        root / "charts" / "pinstack-operator",
        release=OPERATOR_RELEASE,
        namespace=OPERATOR_NAMESPACE,
        include_crds=True,
    )
    return OPERATOR_MANIFEST_HEADER + namespace_doc + rendered


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pinstack_devinfra.tools {sync,render,check}``."""
    parser = argparse.ArgumentParser(prog="python -m pinstack_devinfra.tools")
    parser.add_argument(
        "command",
        choices=["sync", "render", "check", "install"],
        help="sync: copy CRD/dashboards/alerts into the charts; render: write "
        "manifests/operator.yaml; check: fail if either is stale; install: fetch the tools",
    )
    args = parser.parse_args(argv)
    root = repo_root()
    manifest = root / "manifests" / "operator.yaml"
    if args.command == "sync":
        for path in sync_chart_copies(root):
            _log(f"updated {path.relative_to(root)}")
        return 0
    if args.command == "render":
        sync_chart_copies(root)
        manifest.write_text(render_operator_manifest(root))
        _log(f"wrote {manifest.relative_to(root)}")
        return 0
    if args.command == "install":
        for tool in (helm(), helm_unittest(), promtool()):
            _log(f"ready: {tool}")
        return 0
    problems = stale_chart_copies(root)
    if not manifest.exists() or manifest.read_text() != render_operator_manifest(root):
        problems.append(f"{manifest.relative_to(root)} is stale")
    for problem in problems:
        _log(problem)
    if problems:
        _log("run `uv run python -m pinstack_devinfra.tools render`")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
