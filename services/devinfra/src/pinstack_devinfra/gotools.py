"""Go binaries built from the Go module proxy and cached outside the checkout.

Two ways in:

- :func:`go_install_binary` for modules that ``go install module@version`` accepts (helm,
  kwok, helm-unittest ...);
- :func:`build_wrapper_binary` for modules whose go.mod carries local ``replace`` directives
  (kube-apiserver, etcd): a small wrapper module of our own requires them, replaces what needs
  replacing with published versions, and builds the package.

Binaries land in ``cache_dir("bin", "<name>-<version>")``; a finished build is marked by the
binary's presence (written atomically), so an interrupted build is simply redone. Progress goes
to stderr because the first build takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pinstack_devinfra.cache import build_once, cache_dir
from pinstack_devinfra.commands import ToolError, log

__all__ = [
    "ACTIONLINT_VERSION",
    "HELM_VERSION",
    "actionlint_binary",
    "build_wrapper_binaries",
    "build_wrapper_binary",
    "go_executable",
    "go_install_binary",
    "go_mod_replaces",
    "go_module_dir",
    "helm_binary",
]

HELM_VERSION = "v3.21.4"
ACTIONLINT_VERSION = "v1.7.12"

_INSTALL_HINT = (
    "the Go toolchain (>= 1.24) is required to build test binaries from the Go module proxy: "
    "install it (e.g. `apt-get install golang-go` or the official tarball into /usr/local/go) "
    "and put `go` on PATH"
)


def go_executable() -> str:
    """Path of the ``go`` command, or :class:`ToolError` saying what to install."""
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise ToolError(_INSTALL_HINT)
    return found


def _run_go(args: Sequence[str], *, cwd: Path, env: Mapping[str, str], what: str) -> str:
    """Run one go command, echoing a heartbeat so a long first build is visibly alive."""
    log(f"{what}: go {' '.join(args)}")
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - the go binary and our own arguments, no shell
        [go_executable(), *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while True:
        try:
            stdout, stderr = process.communicate(timeout=30)
            break
        except subprocess.TimeoutExpired:
            log(f"{what}: still running ({time.monotonic() - started:.0f}s)")
    if process.returncode != 0:
        raise ToolError(f"{what} failed (go {' '.join(args)}):\n{stderr[-4000:]}")
    log(f"{what}: done in {time.monotonic() - started:.0f}s")
    return stdout


def go_install_binary(module_path: str, version: str, name: str) -> Path:
    """``go install module_path@version`` into the cache and return the binary named ``name``.

    ``module_path`` is the package path of the command (e.g. ``helm.sh/helm/v3/cmd/helm``).
    """
    target_dir = cache_dir("bin", f"{name}-{version}")
    binary = target_dir / name

    def install() -> None:
        staging = target_dir / ".gobin"
        staging.mkdir(exist_ok=True)
        _run_go(
            ["install", f"{module_path}@{version}"],
            cwd=target_dir,
            env={"GOBIN": str(staging), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"},
            what=f"installing {name} {version}",
        )
        os.replace(staging / name, binary)

    build_once(target_dir, done=binary.exists, build=install)
    return binary


def helm_binary(version: str = HELM_VERSION) -> Path:
    """The ``helm`` CLI, installed from the Go module proxy and cached."""
    return go_install_binary("helm.sh/helm/v3/cmd/helm", version, "helm")


def actionlint_binary(version: str = ACTIONLINT_VERSION) -> Path:
    """``actionlint`` (the GitHub Actions workflow checker), from the Go module proxy, cached."""
    return go_install_binary("github.com/rhysd/actionlint/cmd/actionlint", version, "actionlint")


def _module_download(module: str, version: str) -> dict[str, str]:
    """``go mod download -json module@version``: where Go's module cache keeps it."""
    output = _run_go(
        ["mod", "download", "-json", f"{module}@{version}"],
        cwd=cache_dir("go-wrappers", "_scratch"),
        env={"GOFLAGS": "-mod=mod"},
        what=f"fetching {module}@{version}",
    )
    info: dict[str, str] = json.loads(output)
    return info


def go_module_dir(module: str, version: str) -> Path:
    """The unpacked source of ``module@version`` in Go's module cache (read-only files)."""
    return Path(_module_download(module, version)["Dir"])


def go_mod_replaces(module: str, version: str, *, local_prefix: str = "./") -> list[str]:
    """Modules that ``module@version``'s go.mod replaces with a local path (``=> ./...``)."""
    gomod = Path(_module_download(module, version)["GoMod"]).read_text()
    replaced: list[str] = []
    for raw in gomod.splitlines():
        line = raw.strip().removeprefix("replace").strip()
        if "=>" not in line:
            continue
        left, right = (part.strip() for part in line.split("=>", 1))
        if right.startswith((local_prefix, "../")):
            replaced.append(left.split()[0])
    return replaced


def build_wrapper_binary(
    *,
    name: str,
    version: str,
    requires: Mapping[str, str],
    package: str,
    replaces: Mapping[str, str] | None = None,
    main_go: str | None = None,
    ldflags: Sequence[str] = (),
    go_directive: str = "1.24.0",
) -> Path:
    """Build ``package`` inside a wrapper module and cache the binary as ``name``.

    ``requires`` maps module → version; ``replaces`` maps module → the published version it is
    replaced with, or → ``"other/module version"`` for a fork. With ``main_go`` the wrapper's own
    ``main.go`` is the program (``package`` is then imported by it); otherwise ``package`` is a
    ``main`` package built directly.
    """
    built = build_wrapper_binaries(
        group=f"{name}-{version}",
        requires=requires,
        packages={name: "." if main_go is not None else package},
        replaces=replaces,
        main_go=main_go,
        ldflags=ldflags,
        go_directive=go_directive,
    )
    return built[name]


def _target(module: str, replacement: str) -> str:
    """``v0.34.4`` means the same module at that version; ``fork/module v0.4.0`` a fork."""
    return replacement if " " in replacement else f"{module} {replacement}"


def build_wrapper_binaries(
    *,
    group: str,
    requires: Mapping[str, str],
    packages: Mapping[str, str],
    replaces: Mapping[str, str] | None = None,
    main_go: str | None = None,
    ldflags: Sequence[str] = (),
    go_directive: str = "1.24.0",
) -> dict[str, Path]:
    """Build several ``main`` packages of one wrapper module, one ``go build`` each.

    ``packages`` maps binary name → package path (``"."`` is the wrapper's own ``main_go``). The
    builds share one module graph and Go's build cache, so after the first (kubelet compiles most
    of k8s.io) the others take seconds to minutes. The binaries land in
    ``cache_dir("bin", group)``; the group is done when all are there.
    """
    target_dir = cache_dir("bin", group)
    binaries = {name: target_dir / name for name in packages}

    def build() -> None:
        log(f"building {', '.join(packages)} ({group}) from the Go module proxy (minutes)")
        work = cache_dir("go-wrappers", group)
        lines = ["module pinstack.local/wrapper", "", f"go {go_directive}", "", "require ("]
        lines += [f"\t{module} {ver}" for module, ver in sorted(requires.items())]
        lines.append(")")
        if replaces:
            lines += ["", "replace ("]
            lines += [f"\t{mod} => {_target(mod, to)}" for mod, to in sorted(replaces.items())]
            lines.append(")")
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        (work / "go.sum").unlink(missing_ok=True)
        if main_go is not None:
            (work / "main.go").write_text(main_go)
            (work / "tools.go").unlink(missing_ok=True)
        else:
            body = "\n".join(f'\t_ "{p}"' for p in packages.values())
            (work / "tools.go").write_text(
                f"//go:build tools\n\npackage tools\n\nimport (\n{body}\n)\n"
            )
        env = {"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=mod"}
        _run_go(["mod", "tidy"], cwd=work, env=env, what=f"resolving modules for {group}")
        args = ["build", "-trimpath"]
        if ldflags:
            args += ["-ldflags", " ".join(ldflags)]
        for name, package in packages.items():
            if binaries[name].exists():
                continue
            partial = target_dir / f".{name}.partial"
            _run_go(
                [*args, "-o", str(partial), package],
                cwd=work,
                env=env,
                what=f"compiling {name} ({group})",
            )
            os.replace(partial, binaries[name])

    build_once(target_dir, done=lambda: all(b.exists() for b in binaries.values()), build=build)
    return binaries
