"""Databases on a shared PostgreSQL server: ownership markers on databases and roles, no
adopting or dropping another stack's, and passwords sent only when they change."""

from __future__ import annotations

import base64
import json
from typing import Any

import asyncpg

from pinstack_operator.ownership import password_matches
from tests.polling import eventually

from .conftest import StackFactory
from .test_operator import _condition_is, _databases, _ref, _roles
from .test_operator_migrations import _pass_observed


async def _fetch(postgres: Any, query: str, *args: str) -> Any:
    conn = await asyncpg.connect(postgres.dsn())
    try:
        return await conn.fetchrow(query, *args)
    finally:
        await conn.close()


async def _markers(postgres: Any, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The ownership markers (comments) of database ``name`` and of its role."""
    row = await _fetch(
        postgres,
        "SELECT shobj_description(d.oid, 'pg_database') AS db, "
        "shobj_description(r.oid, 'pg_authid') AS role "
        "FROM pg_database d, pg_roles r WHERE d.datname = $1 AND r.rolname = $1",
        name,
    )
    return json.loads(row["db"]), json.loads(row["role"])


async def _password_verifier(postgres: Any, role: str) -> str:
    """The role's SCRAM verifier: every ALTER ROLE ... PASSWORD salts it anew, so it changes
    exactly when a password statement was sent."""
    row = await _fetch(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    return str(row["rolpassword"])


async def test_password_is_sent_only_when_it_changes(stacks: StackFactory, postgres: Any) -> None:
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "DatabasesReady", "True")
    role = stacks.database("user")
    verifiers = {await _password_verifier(postgres, role)}
    for _ in range(3):
        await _pass_observed(stacks)
        verifiers.add(await _password_verifier(postgres, role))
    assert len(verifiers) == 1, "ALTER ROLE ... PASSWORD was sent on a pass that changed nothing"

    db_marker, role_marker = await _markers(postgres, role)
    uid = (await _ref(stacks)).uid
    assert db_marker == {
        "pinstack.io/stack-uid": uid,
        "pinstack.io/stack": f"{stacks.namespace}/stack",
    }
    assert role_marker["pinstack.io/stack-uid"] == uid
    secret = await stacks.secret("stack-user-db")
    assert secret is not None
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert password_matches(password, role_marker["pinstack.io/password"])
    assert password not in json.dumps(role_marker)

    # A new password in the Secret (rotated by hand): set once.
    rotated = "rotated-" + password
    encoded = base64.b64encode(rotated.encode()).decode()
    await stacks.api.patch("v1", "Secret", namespace=stacks.namespace, name="stack-user-db",
                           patch={"data": {"password": encoded}})  # fmt: skip
    await _pass_observed(stacks)

    async def rotated_marker() -> bool:
        _, marker = await _markers(postgres, role)
        return password_matches(rotated, marker["pinstack.io/password"])

    await eventually(rotated_marker, what="the role given the rotated password")
    verifiers.add(await _password_verifier(postgres, role))
    assert len(verifiers) == 2
    await _pass_observed(stacks)
    assert len(verifiers | {await _password_verifier(postgres, role)}) == 2


async def test_another_stacks_database_is_neither_adopted_nor_dropped(
    stacks: StackFactory, api: Any, postgres: Any, kafka: Any
) -> None:
    await stacks.api.apply(stacks.manifest())
    await _condition_is(stacks, "DatabasesReady", "True")
    owner = await _ref(stacks)
    before = await _password_verifier(postgres, stacks.database("user"))

    # A second stack, in another namespace, claims the first stack's user database.
    other = StackFactory(api=api, postgres=postgres, kafka=kafka)
    await other.prepare()
    manifest = other.manifest(reclaimPolicy="Delete")
    manifest["spec"]["services"][0]["database"] = stacks.database("user")
    await other.api.apply(manifest)
    refused = await _condition_is(other, "DatabasesReady", "False")
    assert refused["reason"] == "OwnedByAnotherStack"
    assert (
        f"database {stacks.database('user')!r} belongs to stack {stacks.namespace}/stack"
        in (refused["message"])
    )
    assert owner.uid in refused["message"]
    stack = await other.get()
    assert stack is not None
    assert stack["status"]["phase"] == "Degraded"
    assert await other.secret("stack-user-db") is None  # no credentials for what is not its own
    assert await other.secret("stack-auth-db") is not None  # its own database is provisioned
    assert await _password_verifier(postgres, stacks.database("user")) == before
    db_marker, role_marker = await _markers(postgres, stacks.database("user"))
    assert db_marker["pinstack.io/stack-uid"] == role_marker["pinstack.io/stack-uid"] == owner.uid

    # Deleting it (reclaimPolicy: Delete) drops its own database, never the first stack's.
    await other.api.delete("pinstack.io/v1alpha1", "PinstackStack", namespace=other.namespace,
                           name="stack")  # fmt: skip
    await eventually(other.gone, what="the second stack deleted")
    databases = await _databases(postgres)
    assert stacks.database("user") in databases
    assert stacks.database("user") in await _roles(postgres)
    assert other.database("auth") not in databases
    assert (await stacks.condition("DatabasesReady") or {})["status"] == "True"
