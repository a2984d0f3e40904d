"""Input the services cannot take is a 4xx at the gateway, never a 500 (hardening issue).

- Strict JSON (RFC 8259) bodies: ``NaN``, ``Infinity``, ``1e400`` are 400 ``validation failed``,
  and a stored non-finite payload (from before) never fails a read.
- Ids beyond int64 and paging beyond int32 are the contract's 400, not protobuf's ValueError.
- NUL and unpaired surrogates in any text field are 400, not a PostgreSQL error.
- The 1 MiB body limit holds for chunked bodies too, while reading.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.contract.conftest import Account, RunningStack

API = "/api/v1"
NOTIFICATIONS = f"{API}/notification"


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


async def call(
    stack: RunningStack,
    account: Account,
    method: str,
    path: str,
    body: str | bytes | None = None,
) -> httpx.Response:
    """``body`` is sent as written: these documents are what ``json.dumps`` would never make."""
    return await stack.client.request(
        method,
        path,
        content=body,
        headers={**account.headers, "Content-Type": "application/json"},
    )


# --- 1. strict JSON ----------------------------------------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]

# Every kind of body, with the non-finite number where the route reads a value and where it
# ignores one: strictness is about the document, not the fields a model happens to read.
STRICT_BODIES = [
    ("POST", "/notification/send", '{"user_id": {me}, "type": "t", "payload": {"x": {n}}}'),
    ("POST", "/notification/send", '{"user_id": {me}, "type": "t", "payload": [1, {n}]}'),
    ("POST", "/notification/send", '{"user_id": {me}, "type": "t", "payload": {n}}'),
    (
        "POST",
        "/auth/register",
        '{"username": "{u}", "email": "{u}@example.com", "password": "password123", "x": {n}}',
    ),
    ("POST", "/auth/login", '{"login": "someone", "password": "password123", "x": {n}}'),
    ("POST", "/posts", '{"title": "t", "media_items": [{"url": "http://a.b/c", "position": {n}}]}'),
    ("PUT", "/users", '{"id": {n}}'),
    ("POST", "/relation/follow", '{"followee_id": {n}}'),
]


@pytest.mark.parametrize(("method", "path", "template"), STRICT_BODIES)
async def test_non_finite_numbers_are_refused_in_every_body(
    stack: RunningStack, method: str, path: str, template: str
) -> None:
    me = await stack.register()
    for literal in NON_FINITE:
        unique = f"n{uuid.uuid4().hex[:10]}"  # otherwise valid: only the number is wrong
        body = template.replace("{me}", str(me.id)).replace("{u}", unique).replace("{n}", literal)
        assert_error(await call(stack, me, method, API + path, body), 400, "validation failed")
    feed = await stack.client.get(f"{NOTIFICATIONS}/feed", headers=me.headers)
    assert feed.status_code == 200, feed.text
    assert feed.json()["data"]["total"] == 0


async def test_finite_extremes_are_still_accepted(stack: RunningStack) -> None:
    me = await stack.register()
    payload = '{"big": 1.7976931348623157e308, "tiny": 5e-324, "int": 123456789012345678901234}'
    sent = await call(
        stack, me, "POST", f"{NOTIFICATIONS}/send", f'{{"user_id": {me.id}, "type": "t", '
        f'"payload": {payload}}}'
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    got = await stack.client.get(
        f"{NOTIFICATIONS}/{sent.json()['data']['notification_id']}", headers=me.headers
    )
    assert got.status_code == 200, got.text
    assert got.json()["data"]["payload"] == json.loads(payload)


async def test_stored_non_finite_payload_never_fails_a_read(stack: RunningStack) -> None:
    """Rows stored before strict parsing existed are served with ``null`` in their place."""
    me = await stack.register()
    sent = await call(
        stack, me, "POST", f"{NOTIFICATIONS}/send", f'{{"user_id": {me.id}, "type": "old", '
        '"payload": {"x": 1}}'
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    nid = sent.json()["data"]["notification_id"]
    assert stack.embedded.postgres is not None
    connection = await asyncpg.connect(stack.embedded.postgres.dsn("pinstack_notification"))
    try:
        await connection.execute(
            "UPDATE notifications SET payload = $1 WHERE id = $2",
            '{"x":NaN,"y":[Infinity,-Infinity,1e400],"z":1.5,"s":"ok"}',
            nid,
        )
    finally:
        await connection.close()
    expected = {"x": None, "y": [None, None, None], "z": 1.5, "s": "ok"}

    got = await stack.client.get(f"{NOTIFICATIONS}/{nid}", headers=me.headers)
    assert got.status_code == 200, got.text
    assert got.json()["data"]["payload"] == expected
    feed = await stack.client.get(f"{NOTIFICATIONS}/feed", headers=me.headers)
    assert feed.status_code == 200, feed.text
    assert [item["payload"] for item in feed.json()["data"]["notifications"]] == [expected]


# --- 2. integer bounds -------------------------------------------------------------------------

INT64_OVER = [2**63, 2**64]
INT32_OVER = [2**31, 2**32, 2**63]


def _id_cases(me: Account, big: int) -> list[tuple[str, str, str | None]]:
    return [
        ("GET", f"/users/{big}", None),
        ("DELETE", f"/users/{big}", None),
        ("PUT", "/users", f'{{"id": {big}, "bio": "b"}}'),
        ("GET", f"/posts/{big}", None),
        ("PUT", f"/posts/{big}", '{"title": "t"}'),
        ("DELETE", f"/posts/{big}", None),
        ("GET", f"/posts/list?author_id={big}", None),
        ("POST", "/relation/follow", f'{{"followee_id": {big}}}'),
        ("POST", "/relation/unfollow", f'{{"followee_id": {big}}}'),
        ("GET", f"/relation/{big}/followers", None),
        ("GET", f"/relation/{big}/followees", None),
        ("GET", f"/notification/{big}", None),
        ("PUT", f"/notification/{big}/read", None),
        ("DELETE", f"/notification/{big}", None),
        ("POST", "/notification/send", f'{{"user_id": {big}, "type": "t"}}'),
    ]


def _paging_cases(me: Account, big: int) -> list[tuple[str, str, str | None]]:
    media = f'[{{"url": "http://a.b/c.png", "type": "image", "position": {big}}}]'
    return [
        ("GET", f"/users/search?query=a&page={big}", None),
        ("GET", f"/users/search?query=a&limit={big}", None),
        ("GET", f"/posts/list?offset={big}", None),
        ("GET", f"/posts/list?limit={big}", None),
        ("POST", "/posts", f'{{"title": "t", "media_items": {media}}}'),
        ("PUT", "/posts/1", f'{{"media_items": {media}}}'),
        (
            "POST",
            "/posts",
            f'{{"title": "t", "media_items": {media.replace(str(big), "-" + str(big + 1))}}}',
        ),
        ("GET", f"/relation/{me.id}/followers?page={big}", None),
        ("GET", f"/relation/{me.id}/followees?limit={big}", None),
    ]


@pytest.mark.parametrize("big", INT64_OVER)
async def test_ids_beyond_int64_are_validation_failed(stack: RunningStack, big: int) -> None:
    me = await stack.register()
    for method, path, body in _id_cases(me, big):
        response = await call(stack, me, method, API + path, body)
        assert (response.status_code, response.json()) == (
            400,
            {"status": 400, "message": "validation failed"},
        ), f"{method} {path}"


@pytest.mark.parametrize("big", INT32_OVER)
async def test_paging_beyond_int32_is_the_contracts_400(stack: RunningStack, big: int) -> None:
    me = await stack.register()
    for method, path, body in _paging_cases(me, big):
        response = await call(stack, me, method, API + path, body)
        assert (response.status_code, response.json()) == (
            400,
            {"status": 400, "message": "validation failed"},
        ), f"{method} {path}"
    for query in (f"page={big}", f"limit={big}"):  # the feed's column says `invalid input`
        response = await stack.client.get(f"{NOTIFICATIONS}/feed?{query}", headers=me.headers)
        assert_error(response, 400, "invalid input")


async def test_largest_int64_id_and_int32_page_are_served(stack: RunningStack) -> None:
    me = await stack.register()
    top, page = 2**63 - 1, 2**31 - 1
    assert_error(await stack.client.get(f"{API}/users/{top}"), 404, "user not found")
    assert_error(await stack.client.get(f"{API}/posts/{top}"), 404, "post not found")
    assert_error(
        await stack.client.get(f"{NOTIFICATIONS}/{top}", headers=me.headers),
        404,
        "notification not found",
    )
    for path in (
        f"/users/search?query=a&page={page}",
        f"/posts/list?offset={page}",
        f"/relation/{me.id}/followers?page={page}",
        f"/notification/feed?page={page}",
    ):
        response = await stack.client.get(API + path, headers=me.headers)
        assert response.status_code == 200, (path, response.text)


# --- 3. NUL and unpaired surrogates ------------------------------------------------------------

BAD_TEXT = {"nul": "\\u0000", "surrogate": "\\ud800", "low surrogate": "\\udc00"}


def _text_cases(me: Account, bad: str) -> list[tuple[str, str, str]]:
    """A JSON string holding ``bad`` (an escape), in every text field of every body."""
    name = f"x{bad}y"
    return [
        (
            "POST",
            "/auth/register",
            f'{{"username": "{name}", "email": "a@b.co", "password": "p" }}',
        ),
        ("POST", "/auth/register", f'{{"username": "okname", "email": "{name}@b.co"}}'),
        ("POST", "/auth/register", f'{{"username": "okname", "password": "pass{bad}word"}}'),
        ("POST", "/auth/register", f'{{"username": "okname", "full_name": "{name}"}}'),
        ("POST", "/auth/register", f'{{"username": "okname", "bio": "{name}"}}'),
        ("POST", "/auth/register", f'{{"username": "okname", "avatar_url": "http://{name}"}}'),
        ("POST", "/auth/login", f'{{"login": "{name}", "password": "password123"}}'),
        ("POST", "/auth/refresh", f'{{"refresh_token": "{name}"}}'),
        ("POST", "/auth/logout", f'{{"refresh_token": "{name}"}}'),
        ("POST", "/auth/update-password", f'{{"old_password": "{name}", "new_password": "p"}}'),
        ("POST", "/users", f'{{"username": "okname", "full_name": "{name}"}}'),
        ("PUT", "/users", f'{{"id": {me.id}, "bio": "{name}"}}'),
        ("PUT", "/users", f'{{"id": {me.id}, "full_name": "{name}"}}'),
        ("PUT", "/users/avatar", f'{{"avatar_url": "http://a.b/{name}"}}'),
        ("POST", "/posts", f'{{"title": "{name}"}}'),
        ("POST", "/posts", f'{{"title": "t", "content": "{name}"}}'),
        ("POST", "/posts", f'{{"title": "t", "tags": ["{name}"]}}'),
        ("POST", "/posts", f'{{"title": "t", "media_items": [{{"url": "http://a.b/{name}"}}]}}'),
        ("PUT", "/posts/1", f'{{"title": "{name}"}}'),
        ("POST", "/notification/send", f'{{"user_id": {me.id}, "type": "{name}"}}'),
        ("POST", "/notification/send", f'{{"user_id": {me.id}, "type": "t", "payload": "{name}"}}'),
        (
            "POST",
            "/notification/send",
            f'{{"user_id": {me.id}, "type": "t", "payload": {{"{name}": 1}}}}',
        ),
        ("POST", "/relation/follow", f'{{"followee_id": 1, "note": "{name}"}}'),
    ]


@pytest.mark.parametrize("bad", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
async def test_nul_and_unpaired_surrogates_in_bodies_are_refused(
    stack: RunningStack, bad: str
) -> None:
    me = await stack.register()
    for method, path, body in _text_cases(me, bad):
        response = await call(stack, me, method, API + path, body)
        assert (response.status_code, response.json()) == (
            400,
            {"status": 400, "message": "validation failed"},
        ), f"{method} {path} {body}"


async def test_raw_surrogate_bytes_are_refused(stack: RunningStack) -> None:
    """UTF-8-encoded surrogates (not valid UTF-8, but Python decodes them with surrogatepass)."""
    me = await stack.register()
    body = b'{"title": "x\xed\xa0\x80y"}'
    response = await call(stack, me, "POST", f"{API}/posts", body)
    assert_error(response, 400, "validation failed")


@pytest.mark.parametrize(
    "path",
    [
        "/users/username/a%00b",
        "/users/email/a%00@b.co",
        "/users/search?query=a%00b",
        "/posts/list?tag=a%00b",
        "/posts/list?created_after=2024-01-01T00:00:00Z%00",
        "/relation/1/followers?x=%00",
    ],
)
async def test_nul_in_path_and_query_is_refused(stack: RunningStack, path: str) -> None:
    assert_error(await stack.client.get(API + path), 400, "validation failed")


async def test_paired_surrogates_are_text(stack: RunningStack) -> None:
    """An escaped surrogate pair is one character (here an emoji) and is accepted."""
    me = await stack.register()
    response = await call(stack, me, "POST", f"{API}/posts", '{"title": "hi \\ud83d\\ude00"}')
    assert response.status_code == 201, response.text
    assert response.json()["data"]["title"] == "hi \U0001f600"


# --- 4. body limit while reading ---------------------------------------------------------------


async def _post_chunked(
    stack: RunningStack, path: str, chunks: list[bytes], *, deadline: float = 30.0
) -> tuple[int, dict[str, Any], int]:
    """POST ``chunks`` with chunked transfer encoding over a raw socket, reading the answer while
    still sending. Returns the status, the JSON body, and how many body bytes were sent.

    A plain socket, not asyncio streams: a server that answers early and closes resets the
    sending side, and the answer must still be readable from the receive side.
    """
    address = urlsplit(stack.url)
    loop = asyncio.get_running_loop()
    sock = socket.create_connection((address.hostname, address.port))
    sock.setblocking(False)
    sent = 0

    async def pump() -> None:
        nonlocal sent
        try:
            for chunk in chunks:
                await loop.sock_sendall(sock, b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            await loop.sock_sendall(sock, b"0\r\n\r\n")
        except OSError:
            return  # the server answered and closed: what we wanted to know

    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    await loop.sock_sendall(sock, head.encode())
    pumping = asyncio.create_task(pump())
    answer = b""
    try:
        async with asyncio.timeout(deadline):
            while True:
                if b"\r\n\r\n" in answer:
                    header, _, rest = answer.partition(b"\r\n\r\n")
                    lines = header.decode("latin-1").split("\r\n")
                    fields = {
                        name.lower(): value
                        for name, _, value in (line.partition(": ") for line in lines[1:])
                    }
                    if len(rest) >= int(fields["content-length"]):
                        break
                data = await loop.sock_recv(sock, 65_536)
                if not data:
                    raise AssertionError(f"connection closed after {answer!r}")
                answer += data
    finally:
        pumping.cancel()
        sock.close()
    length = int(fields["content-length"])
    return int(lines[0].split()[1]), json.loads(rest[:length]), sent


@pytest.mark.parametrize(
    "path", ["/auth/register", "/auth/login", "/posts", "/notification/send", "/relation/follow"]
)
async def test_chunked_body_over_the_limit_is_refused_while_reading(
    stack: RunningStack, path: str
) -> None:
    chunk = b" " * 65_536  # whitespace: valid JSON padding, so only the size can be wrong
    chunks = [b'{"username": "big"'] + [chunk] * 800 + [b"}"]  # ~50 MiB
    status, body, sent = await _post_chunked(stack, API + path, chunks)
    assert (status, body) == (413, {"status": 413, "message": "request entity too large"})
    assert sent < 20 * 1_048_576  # it stopped reading long before the end


async def test_chunked_body_under_the_limit_is_served(stack: RunningStack) -> None:
    name = f"c{uuid.uuid4().hex[:10]}"
    document = json.dumps(
        {"username": name, "email": f"{name}@example.com", "password": "password123"}
    ).encode()
    chunks = [document[i : i + 7] for i in range(0, len(document), 7)]
    status, body, _ = await _post_chunked(stack, f"{API}/auth/register", chunks)
    assert status == 201, body
    assert set(body["data"]) == {"access_token", "refresh_token"}
