"""Generate docs/configuration.md: every ``PINSTACK_*`` variable, its default, who reads it and
which mode sets it.

Usage: python scripts/gen_config_docs.py [--check]

The settings come from the pydantic-settings classes themselves (every ``BaseSettings``
subclass in the ``pinstack_*`` packages), the operator's ``OperatorConfig`` and the CLI's
options; which mode sets a variable is read from the code that sets it: ``pinstack up``'s
``EmbeddedStack``, ``pinstack dev up``'s ``component_env``, and for Kubernetes the charts'
templates and the operator's resources. Variables read outside any settings class are listed in
:data:`OTHER` (tests/unit/test_config_docs.py fails when one is missing). ``--check`` fails when
the committed document differs, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
MODES = ("`pinstack up`", "`pinstack dev up`", "Kubernetes")

# Read outside any settings class: (variable, default, read by, set by).
OTHER: tuple[tuple[str, str, str, str], ...] = (
    ("PINSTACK_<SERVICE>_DATABASE_URL", "`PINSTACK_DATABASE_URL`",
     "`pinstack migrate` (one service's database)", "—"),
    ("PINSTACK_COMPONENT", "—", "nothing (a label on the pod for people and log shippers)",
     "Kubernetes"),
    ("PINSTACK_CACHE_DIR", "`~/.cache/pinstack`", "pinstack_devinfra (downloads and builds)",
     "—"),
    ("PINSTACK_DEBIAN_MIRROR", "apt's mirror", "pinstack_devinfra.cluster (image root fs)", "—"),
    ("PINSTACK_PYPI_SIMPLE", "`https://pypi.org/simple`",
     "pinstack_devinfra.cluster (image builds)", "—"),
    ("PINSTACK_CLUSTER_ATTACH", "unset", "tests/cluster (reuse a running cluster)", "—"),
    ("PINSTACK_PROPERTY_EXAMPLES", "`100`", "tests/property (examples per test)", "—"),
    ("PINSTACK_CHROMIUM", "`chromium` on PATH", "tests/contract (Swagger UI in a browser)", "—"),
    ("PINSTACK_BENCH_EDGES", "per profile", "bench/seed.py", "—"),
)  # fmt: skip


def _settings_classes() -> list[type[BaseSettings]]:
    """Every ``BaseSettings`` subclass defined in a ``pinstack_*`` package, base classes first."""
    for path in sorted(ROOT.glob("services/*/src/pinstack_*/settings.py")):
        importlib.import_module(f"{path.parent.name}.settings")
    importlib.import_module("pinstack_cli.main")
    found: list[type[BaseSettings]] = []
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        for sub in pending.pop(0).__subclasses__():
            if sub.__module__.startswith("pinstack_") and sub not in found:
                found.append(sub)
            pending.append(sub)
    return found


def _reader(cls: type[BaseSettings]) -> str:
    package = cls.__module__.split(".")[0].removeprefix("pinstack_")
    if package == "common":
        return "every component"
    if package == "cli":
        return "the `pinstack` process"
    return package


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "none: required" if not value.get_secret_value() else "(secret)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{value}`"


def _field_default(info: Any) -> Any:
    return info.default_factory() if info.default_factory is not None else info.default


def _fields() -> dict[str, dict[str, Any]]:
    """``PINSTACK_X`` → its readers and defaults (one per reader where they differ)."""
    rows: dict[str, dict[str, Any]] = {}
    for cls in _settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            row = rows.setdefault(f"{prefix}{name}".upper(), {"field": name, "readers": {}})
            base = next(
                (b for b in cls.__mro__[1:] if name in getattr(b, "model_fields", {})), None
            )
            default = _default(_field_default(info))
            # An inherited field is listed again only where this class changes its default.
            inherited = row["readers"].get(_reader(base)) if base is not None else None
            if inherited is None or default != inherited:
                row["readers"][_reader(cls)] = default
    return rows


def _operator_fields() -> dict[str, dict[str, Any]]:
    """``OperatorConfig`` reads ``PINSTACK_OPERATOR_<FIELD>`` in ``from_env``."""
    config = importlib.import_module("pinstack_operator.config")
    cls: Any = config.OperatorConfig
    source = inspect.getsource(cls.from_env)
    rows = {}
    for name, info in cls.model_fields.items():
        if f"{{prefix}}{name.upper()}" not in source:
            raise SystemExit(
                f"OperatorConfig.{name}: from_env reads no PINSTACK_OPERATOR_ variable"
            )
        value = _field_default(info)
        rows[f"PINSTACK_OPERATOR_{name.upper()}"] = {
            "field": name,
            "readers": {"operator": "unset" if value in (None, ()) else _default(value)},
        }
    return rows


def _cli_options() -> dict[str, dict[str, Any]]:
    """Options of the ``pinstack`` command that fall back to a ``PINSTACK_*`` variable."""
    main = importlib.import_module("pinstack_cli.main")
    group = typer.main.get_command(main.app)
    rows: dict[str, dict[str, Any]] = {}

    def walk(command: Any, path: str) -> None:
        for param in command.params:
            for var in [param.envvar] if isinstance(param.envvar, str) else param.envvar or []:
                readers = rows.setdefault(var, {"field": None, "readers": {}})["readers"]
                default = param.default
                readers[f"`{path}`"] = _default(default) if default is not None else "no default"
        # typer vendors its own click: a group is what has sub-commands.
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, f"{path} {name}")

    walk(group, "pinstack")
    return rows


def _mentioned(sources: Iterable[str], fields: dict[str, dict[str, Any]]) -> set[str]:
    """Variables a mode's code sets: ``PINSTACK_X`` literals (a Helm ``PINSTACK_{{ .. }}_ADDR``
    stands for every such variable), or a settings field passed by name (``"name"``, ``name=``,
    and ``addr_setting`` for every service address)."""
    text = "\n".join(sources)
    found = set(re.findall(r"PINSTACK_[A-Z0-9_]+[A-Z0-9]", text))
    for suffix in re.findall(r"PINSTACK_\{\{[^}]*\}\}(_[A-Z_]+)", text):
        found |= {var for var in fields if var.endswith(suffix)}
    for var, row in fields.items():
        name = row["field"]
        if name and re.search(rf"[\"']{name}[\"']|\b{name}=", text):
            found.add(var)
        if name and name.endswith("_addr") and "addr_setting" in text:
            found.add(var)
    return found & set(fields)


def _source(path: str, *names: str) -> list[str]:
    """The source of the named functions and methods of ``path``, read without importing it
    (the CLI's embedded and dev modules load the embedded PostgreSQL wheel at import)."""
    text = (ROOT / path).read_text()
    found = {
        node.name: ast.get_source_segment(text, node) or ""
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef)
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise SystemExit(f"{path}: no function {', '.join(missing)}")
    return [found[name] for name in names]


def _set_by(fields: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    cli = "services/cli/src/pinstack_cli"
    templates = sorted(ROOT.glob("charts/*/templates/*"))
    resources = ROOT / "operator/src/pinstack_operator/resources.py"
    sources = {
        MODES[0]: _source(f"{cli}/embedded.py", "prepare", "build", "prefer_console_logs"),
        MODES[1]: _source(f"{cli}/devstack.py", "component_env"),
        MODES[2]: [resources.read_text(), *(p.read_text() for p in templates)],
    }
    return {mode: _mentioned(texts, fields) for mode, texts in sources.items()}


def _readers(row: dict[str, Any]) -> tuple[str, str]:
    """(defaults, readers): one default, or the first reader's then each override by name."""
    readers: dict[str, str] = row["readers"]
    defaults = list(dict.fromkeys(readers.values()))
    if len(defaults) == 1:
        return defaults[0], ", ".join(readers)
    (first, default), *overrides = readers.items()
    text = "; ".join([default, *(f"{reader}: {value}" for reader, value in overrides)])
    return text, first


def _table(fields: dict[str, dict[str, Any]], set_by: dict[str, set[str]]) -> list[str]:
    lines = [
        f"| Variable | Default | Read by | {' | '.join(MODES)} |",
        "| --- | --- | --- |" + " :-: |" * len(MODES),
    ]
    for var in sorted(fields):
        default, readers = _readers(fields[var])
        marks = " | ".join("✓" if var in set_by[mode] else "" for mode in MODES)
        lines.append(f"| `{var}` | {default} | {readers} | {marks} |")
    return lines


def render() -> str:
    settings = _fields()
    operator = _operator_fields()
    options = _cli_options()
    everything = {**settings, **operator}
    set_by = _set_by(everything)
    out = [
        "# Configuration",
        "",
        "<!-- Generated by scripts/gen_config_docs.py (`make config-docs`); do not edit by hand:",
        "     `make lint` fails when this file is stale. -->",
        "",
        "Every process reads its settings from `PINSTACK_*` environment variables",
        "(pydantic-settings; the environment always wins over what a mode passes in). A ✓ under a",
        "mode means that mode sets the variable itself: `pinstack up` passes it to the components",
        "it builds in one process, `pinstack dev up` puts it in each component's environment, and",
        "on Kubernetes the `pinstack` chart's templates (components), the `pinstack-operator`",
        "chart (the operator) or the operator (migration Jobs) set it. Unmarked variables keep",
        "their default unless you set them.",
        "",
        "## Component settings",
        "",
        "Read by the gRPC services and the gateway (`pinstack_common.settings.ServiceSettings` and",
        "each component's subclass). Where components default differently, each default is named.",
        "",
        *_table(settings, set_by),
        "",
        "## Operator",
        "",
        "Read by the kopf operator (`pinstack_operator.config.OperatorConfig.from_env`).",
        "",
        *_table(operator, set_by),
        "",
        "## Command-line options",
        "",
        "Options of the `pinstack` command that fall back to a variable when not given.",
        "",
        "| Variable | Read by (default) |",
        "| --- | --- |",
    ]
    for var in sorted(options):
        readers = options[var]["readers"]
        text = ", ".join(f"{reader} ({default})" for reader, default in readers.items())
        out.append(f"| `{var}` | {text} |")
    out += [
        "",
        "## Other variables",
        "",
        "Read outside the settings classes: migrations, development tooling, tests and benchmarks.",
        "",
        "| Variable | Default | Read by | Set by |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| `{var}` | {default} | {reader} | {mode} |" for var, default, reader, mode in OTHER]
    return "\n".join(out) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text() != text:
            sys.stderr.write(f"{DOC.relative_to(ROOT)} is stale: run `make config-docs`\n")
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
