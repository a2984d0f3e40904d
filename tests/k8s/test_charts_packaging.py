"""Images, Tiltfile and the kind e2e script, checked without Docker, kind or Tilt.

- The Dockerfiles' ``uv sync`` steps are replayed in a temporary directory (same files, same
  flags), and the resulting environment must run ``pinstack`` / ``pinstack-operator`` and import
  every component — proof that the image holds what ``pinstack serve <component>`` needs.
- The Tiltfile is Starlark, a Python subset: it is parsed with :mod:`ast`, restricted to
  Starlark's constructs and Tilt's functions, and every path it names must exist.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {"app": REPO / "Dockerfile", "operator": REPO / "Dockerfile.operator"}


def _members() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(p.parent.relative_to(REPO)) for p in REPO.glob(f"{pattern}/pyproject.toml")
        )
    return members


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(dockerfile):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


# --------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_copies_every_workspace_pyproject(name: str) -> None:
    copies = {args for keyword, args in _instructions(DOCKERFILES[name]) if keyword == "COPY"}
    for member in _members():
        assert f"{member}/pyproject.toml {member}/" in copies, f"{name}: {member} not copied"
    assert "pyproject.toml uv.lock ./" in copies


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_runtime_is_non_root_and_pinned(name: str) -> None:
    instructions = _instructions(DOCKERFILES[name])
    stage_names = {args.split()[-1] for keyword, args in instructions
                   if keyword == "FROM" and " AS " in args}  # fmt: skip
    for keyword, args in instructions:
        if keyword == "FROM" and args.split()[0] not in stage_names:
            image = args.split()[0]
            assert ":" in image, f"{name}: unpinned base image {image}"
            assert not image.endswith(":latest"), f"{name}: {image}"
    runtime = next(s for s in _stages(DOCKERFILES[name]) if "AS runtime" in s[0][1])
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, f"{name}: the runtime stage runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"{name}: USER must be numeric for runAsNonRoot"
    assert int(uid) != 0
    entrypoints = [args for keyword, args in runtime if keyword == "ENTRYPOINT"]
    expected = "pinstack" if name == "app" else "pinstack-operator"
    assert entrypoints == [f'["{expected}"]']
    syncs = [args for keyword, args in instructions if keyword == "RUN" and "uv sync" in args]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync


def test_dockerignore_admits_everything_the_images_copy() -> None:
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}  # fmt: skip
    for name, dockerfile in DOCKERFILES.items():
        for keyword, args in _instructions(dockerfile):
            if keyword != "COPY" or args.startswith("--from"):
                continue
            for source in args.split()[:-1]:
                top = source.split("/")[0]
                assert top in allowed, f"{name}: {source} is excluded by .dockerignore"


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is required (the Makefile installs it): python3 -m pip install --user uv")
    return found


def _replay_build(dockerfile: Path, workdir: Path) -> Path:
    """Run the build stage's COPY and `uv sync` steps in ``workdir``; return the venv."""
    build = next(s for s in _stages(dockerfile) if "AS build" in s[0][1])
    venv = workdir / ".venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never",
           "UV_COMPILE_BYTECODE": "0", "UV_NO_PROGRESS": "1"}  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    for keyword, args in build:
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, destination = args.split()
            for source in sources:  # Docker semantics: a directory's contents are copied
                src, dest = REPO / source, workdir / destination
                if src.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv")
                    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=ignore)
                elif destination.endswith("/"):
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest / src.name)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest)
        elif keyword == "RUN" and "uv sync" in args:
            command = args[args.index("uv sync") :]
            argv = shlex.split(command)
            argv[0] = _uv()
            result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                                    check=False)  # fmt: skip
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return venv


def test_app_image_environment_serves_every_component(tmp_path: Path) -> None:
    venv = _replay_build(DOCKERFILES["app"], tmp_path)
    pinstack = venv / "bin" / "pinstack"
    assert pinstack.exists()
    help_text = subprocess.run([str(pinstack), "--help"], capture_output=True, text=True,
                               check=True, env={**os.environ, "COLUMNS": "200"}).stdout  # fmt: skip
    for command in ("serve", "migrate"):
        assert command in help_text
    probe = (
        "import importlib\n"
        "from pinstack_cli.components import SERVICES\n"
        "import pinstack_cli.main, pinstack_gateway.app\n"
        "for spec in SERVICES.values(): importlib.import_module(spec.package + '.app')\n"
        "print(sorted(SERVICES))\n"
    )
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True,
                            text=True, check=False, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def test_operator_image_environment_runs_the_operator(tmp_path: Path) -> None:
    venv = _replay_build(DOCKERFILES["operator"], tmp_path)
    assert (venv / "bin" / "pinstack-operator").exists()
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pinstack_operator.main, kopf"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("pinstack_gateway*")), "the operator image carries the services"


# --------------------------------------------------------------------------- Tiltfile

TILT_FUNCTIONS = {
    "load", "allow_k8s_contexts", "update_settings", "k8s_yaml", "k8s_resource", "k8s_kind",
    "local_resource", "docker_build", "docker_build_with_restart", "helm", "fall_back_on", "sync",
    "run", "probe", "http_get_action", "link", "config.define_bool", "config.parse", "cfg.get",
}  # fmt: skip
NOT_STARLARK = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.While, ast.Try, ast.With,
                ast.JoinedStr, ast.Global, ast.Nonlocal, ast.Yield, ast.Await, ast.AsyncFunctionDef,
                ast.Raise)  # fmt: skip


def _tiltfile() -> ast.Module:
    return ast.parse((REPO / "Tiltfile").read_text(), filename="Tiltfile")


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ast.dump(func)


def _calls(name: str) -> list[ast.Call]:
    return [n for n in ast.walk(_tiltfile()) if isinstance(n, ast.Call) and _call_name(n) == name]


def _kw(call: ast.Call, key: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == key:
            return ast.literal_eval(keyword.value)
    raise KeyError(key)


def test_tiltfile_is_starlark_calling_only_tilt_functions() -> None:
    tree = _tiltfile()
    for node in ast.walk(tree):
        assert not isinstance(node, NOT_STARLARK), f"line {node.lineno}: not Starlark"
    called = {_call_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert called <= TILT_FUNCTIONS, called - TILT_FUNCTIONS


def test_tiltfile_paths_exist() -> None:
    for node in ast.walk(_tiltfile()):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value = node.value
        looks_like_path = ("/" in value or value.endswith((".yaml", ".toml", ".lock"))
                           or value.startswith("Dockerfile"))  # fmt: skip
        is_image = re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+/", value) is not None
        if (not looks_like_path or is_image or value.startswith(("/", "ext://", "http", "**"))
                or " " in value or "{" in value or ":" in value):  # fmt: skip
            continue
        assert (REPO / value).exists(), f"the Tiltfile names {value}, which does not exist"


def test_tiltfile_builds_the_images_the_manifests_use() -> None:
    chart_values = yaml.safe_load((REPO / "charts/pinstack/values.yaml").read_text())
    operator_values = yaml.safe_load((REPO / "charts/pinstack-operator/values.yaml").read_text())
    kind_values = yaml.safe_load((REPO / "manifests/kind/pinstack-values.yaml").read_text())
    example = yaml.safe_load((REPO / "manifests/examples/pinstackstack.yaml").read_text())
    (app_build,) = _calls("docker_build_with_restart")
    (operator_build,) = _calls("docker_build")
    app_image = ast.literal_eval(app_build.args[0])
    assert app_image == chart_values["image"]["repository"]
    assert app_image == kind_values["image"]["repository"]
    assert app_image == example["spec"]["image"]["repository"]
    assert ast.literal_eval(operator_build.args[0]) == operator_values["image"]["repository"]
    assert _kw(app_build, "target") == "dev"
    assert _kw(app_build, "entrypoint") == ["pinstack"]


def test_tiltfile_live_update_syncs_sources_and_rebuilds_on_dependency_changes() -> None:
    (fall_back,) = _calls("fall_back_on")
    watched = set(ast.literal_eval(fall_back.args[0]))
    expected = {"pyproject.toml", "uv.lock"} | {f"{m}/pyproject.toml" for m in _members()}
    assert watched == expected
    syncs = {tuple(ast.literal_eval(a) for a in call.args) for call in _calls("sync")}
    assert ("services", "/app/services") in syncs


def test_tiltfile_declares_the_crd_kind_and_forwards_the_gateway() -> None:
    (kind,) = _calls("k8s_kind")
    assert ast.literal_eval(kind.args[0]) == "PinstackStack"
    forwards = [_kw(c, "port_forwards") for c in _calls("k8s_resource")
                if any(k.arg == "port_forwards" for k in c.keywords)]  # fmt: skip
    assert forwards == [["8080:8080"]]
    assert _calls("local_resource"), "the operator's on-host mode"
    charts = {ast.literal_eval(c.args[0]) for c in _calls("helm")}
    assert charts == {"charts/pinstack", "charts/pinstack-operator"}


# --------------------------------------------------------------------------- e2e script


def test_kind_e2e_script_is_executable_valid_bash_naming_existing_files() -> None:
    script = REPO / "e2e" / "kind-e2e.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for path in set(re.findall(r"\b((?:manifests|charts|e2e)/[\w./-]+|Dockerfile[\w.]*)", text)):
        assert (REPO / path).exists(), path
    assert "set -euo pipefail" in text
