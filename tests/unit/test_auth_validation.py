"""The contract's input rules (http-api.md, Auth), as the auth service enforces them."""

from __future__ import annotations

import pytest

from pinstack_auth.usecases import NewAccount
from pinstack_common.errors import InvalidArgumentError
from pinstack_common.validation import (
    validate_avatar_url,
    validate_email,
    validate_password,
    validate_username,
)


@pytest.mark.parametrize("name", ["abc", "a" * 32, "Jane_Doe-1.x", "ünïcode"])
def test_usernames_accepted(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize("name", ["", "ab", "a" * 33, "has space", "tab\tname", "a@b", "new\nline"])
def test_usernames_rejected(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        validate_username(name)


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.org"])
def test_emails_accepted(email: str) -> None:
    assert validate_email(email) == email


@pytest.mark.parametrize(
    "email", ["", "plain", "@example.com", "a@", "a@b", "a b@c.de", "a@@b.de", "a@b..de", "a@.b"]
)
def test_emails_rejected(email: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        validate_email(email)


@pytest.mark.parametrize("password", ["x" * 8, "y" * 128])
def test_password_bounds_accepted(password: str) -> None:
    assert validate_password(password) == password


@pytest.mark.parametrize("password", ["", "x" * 7, "y" * 129])
def test_password_bounds_rejected(password: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        validate_password(password)


@pytest.mark.parametrize("url", ["http://a.io/x.png", "https://cdn.example.com/a?b=c"])
def test_avatar_urls_accepted(url: str) -> None:
    assert validate_avatar_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://a.io/x",
        "javascript:alert(1)",
        "https://",
        "/relative.png",
        "http://[::1",
    ],
)
def test_avatar_urls_rejected(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        validate_avatar_url(url)


def test_new_account_optional_avatar_may_be_empty() -> None:
    account = NewAccount(username="jane", email="jane@example.com", password="secret-pw")
    assert account.avatar_url == ""
    account.validate()  # the empty avatar is not checked as a URL...
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):  # ...a set one is
        NewAccount(
            username="jane", email="jane@example.com", password="secret-pw", avatar_url="x"
        ).validate()


def test_new_account_repr_never_shows_the_password() -> None:
    account = NewAccount(username="jane", email="jane@example.com", password="hunter2-secret")
    assert "hunter2" not in repr(account)
    assert "hunter2" not in str(account)
