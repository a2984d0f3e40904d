"""A typed client generated from the served OpenAPI document drives a journey on the live stack.

``openapi-python-client`` reads ``/swagger/doc.json`` as any API consumer would; the journey
(register, log in, create a post, read it, a refused login) then runs through the generated,
typed functions and models: the document is complete enough to build a working client from.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from pinstack_gateway.openapi import OPENAPI_PATH
from tests.contract.conftest import RunningStack

PACKAGE = "pinstack_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
async def generated(
    tmp_path_factory: pytest.TempPathFactory, stack: RunningStack
) -> AsyncIterator[Path]:
    """The client package, generated from the document the running gateway serves."""
    root = tmp_path_factory.mktemp("client")
    document = root / "openapi.json"
    document.write_bytes((await stack.client.get(OPENAPI_PATH)).content)
    config = root / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run on the generated code
    process = await asyncio.create_subprocess_exec(
        *(str(GENERATOR), "generate", "--path", str(document), "--meta", "none"),
        *("--config", str(config), "--output-path", str(root / PACKAGE), "--fail-on-warning"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_registers_logs_in_posts_and_reads(
    stack: RunningStack, generated: Path
) -> None:
    client_module, models = _module("client"), _module("models")
    register = _module("api.auth.register_api_v1_auth_register_post")
    login = _module("api.auth.login_api_v1_auth_login_post")
    create_post = _module("api.posts.create_post_api_v1_posts_post")
    get_post = _module("api.posts.get_post_api_v1_posts_post_id_get")
    name = f"g{uuid.uuid4().hex[:10]}"

    anonymous = client_module.Client(base_url=stack.url, raise_on_unexpected_status=True)
    registered = await register.asyncio(
        client=anonymous,
        body=models.RegisterBody(
            username=name, email=f"{name}@example.com", password="pass word 1"
        ),
    )
    assert isinstance(registered, models.EnvelopeTokenPair)
    assert registered.status == 201

    refused = await login.asyncio(
        client=anonymous, body=models.LoginBody(login=name, password="wrong password")
    )
    assert isinstance(refused, models.ErrorAnswer)
    assert (refused.status, refused.message) == (401, "invalid credentials")
    logged_in = await login.asyncio(
        client=anonymous, body=models.LoginBody(login=name, password="pass word 1")
    )
    assert isinstance(logged_in, models.EnvelopeTokenPair)

    caller = client_module.AuthenticatedClient(
        base_url=stack.url, token=logged_in.data.access_token, raise_on_unexpected_status=True
    )
    created = await create_post.asyncio(
        client=caller,
        body=models.CreatePostBody(title="Generated", content="by a typed client", tags=["gen"]),
    )
    assert isinstance(created, models.EnvelopeCreatedPost)
    assert created.data.author_username == name

    read = await get_post.asyncio(post_id=created.data.id, client=caller)
    assert isinstance(read, models.EnvelopePost)
    assert read.data.author.username == name
    assert read.data.content == "by a typed client"
    assert [tag.name for tag in read.data.tags] == ["gen"]
    assert isinstance(read.data.created_at, datetime.datetime)
    await asyncio.gather(
        anonymous.get_async_httpx_client().aclose(), caller.get_async_httpx_client().aclose()
    )
