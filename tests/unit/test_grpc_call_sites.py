"""No ``Any`` at a gRPC call site, anywhere in the source.

The modules whose job is calling another service run with ``disallow_any_expr`` (root
pyproject). The gateway's routes, identity and websocket modules cannot: FastAPI's decorators
and Starlette's ``app.state`` are Any. This check covers them too, and every other module: mypy
runs with ``--disallow-any-expr`` over all packages, and only the Any expressions that start a
call of an RPC (a method of a service in the contracts, or the health check) count.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

from mypy import api

import pinstack

# As ``make lint`` checks them.
PACKAGES = [
    "pinstack_common", "pinstack_auth", "pinstack_user", "pinstack_post", "pinstack_relation",
    "pinstack_notification", "pinstack_gateway", "pinstack_cli", "pinstack_devinfra",
    "pinstack_operator",
]  # fmt: skip
_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<column>\d+): "
    r'error: Expression (has type|type contains) "Any"'
)
# Its own cache (the flag differs from lint's, and a shared one would be invalidated each
# time); kept between runs, so a warm run takes seconds rather than a minute.
_CACHE = Path(__file__).resolve().parents[2] / ".mypy_cache" / "grpc-call-sites"


def _rpc_names() -> set[str]:
    names = {"Check"}  # grpc.health.v1
    for module in pkgutil.walk_packages(pinstack.__path__, "pinstack."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            for service in descriptor.services_by_name.values():
                names.update(method.name for method in service.methods)
    return names


def _starts(node: ast.AST) -> set[tuple[int, int]]:
    return {
        (part.lineno, part.col_offset + 1) for part in ast.walk(node) if isinstance(part, ast.expr)
    }


def _rpc_calls(path: Path, rpcs: set[str]) -> set[tuple[int, int]]:
    """Where an Any would be reported for each call of an RPC.

    That is the call and the expression it is called on, and, because mypy reports one
    message once per line, also the ``await`` around the call and the names it is assigned to,
    which come earlier on the line.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    starts: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in rpcs
        ):
            continue
        starts |= _starts(node.func)
        value: ast.expr = node
        if isinstance(awaited := parents.get(node), ast.Await):
            value = awaited
            starts.add((value.lineno, value.col_offset + 1))
        statement = parents.get(value)
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                starts |= _starts(target)
        if isinstance(statement, ast.AnnAssign):
            starts |= _starts(statement.target)
    return starts


def test_every_rpc_call_is_typed() -> None:
    args = ["--disallow-any-expr", "--show-column-numbers", "--no-error-summary"]
    args += ["--cache-dir", str(_CACHE)]
    for package in PACKAGES:
        args += ["-p", package]
    report, errors, _status = api.run(args)
    assert not errors, errors
    rpcs = _rpc_names()
    calls: dict[str, set[tuple[int, int]]] = {}
    untyped = []
    for line in report.splitlines():
        if (match := _ERROR.match(line)) is None:
            continue
        path = match["path"]
        if path not in calls:
            calls[path] = _rpc_calls(Path(path), rpcs)
        if (int(match["line"]), int(match["column"])) in calls[path]:
            untyped.append(line)
    assert rpcs >= {"GetUser", "CreateUser", "StreamNotifications", "GetJwks", "Check"}
    assert calls, "mypy reported no Any at all: the check would be checking nothing"
    assert not untyped, "\n".join(untyped)
