"""Input rules of the HTTP contract that more than one component enforces.

Pure functions: each returns the value it accepted or raises ``InvalidArgumentError`` with
:data:`VALIDATION_FAILED`, the contract's exact message (spelled here only). Services validate
on their own side of the wire because a gateway check alone would let an internal caller store
what the contract forbids. The username rules live in :mod:`pinstack_common.usernames` (with
the canonical form) and are re-exported here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pinstack_common.errors import InvalidArgumentError
from pinstack_common.usernames import USERNAME_MAX, USERNAME_MIN, validate_username

__all__ = [
    "INT64_MAX",
    "PAGE_LIMIT_MAX",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "USERNAME_MAX",
    "USERNAME_MIN",
    "VALIDATION_FAILED",
    "positive_id",
    "validate_avatar_url",
    "validate_email",
    "validate_password",
    "validate_username",
]

VALIDATION_FAILED = "validation failed"
# The most items one page of any list may ask for: the gateway's checks and the services' default
# settings (``list_max_limit``, ``search_max_limit``, ``feed_max_limit``) all read it from here.
PAGE_LIMIT_MAX = 100
INT64_MAX = 2**63 - 1
PASSWORD_MIN, PASSWORD_MAX = 8, 128
_EMAIL_MAX = 254  # RFC 5321 path limit
_URL_MAX = 2048
# Deliberately simple: one "@", a non-empty local part, a dotted domain, no whitespace. Whether
# the mailbox exists is not something a regex can know.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _fail() -> InvalidArgumentError:
    return InvalidArgumentError(VALIDATION_FAILED)


def positive_id(value: int) -> int:
    """Ids are int64 values of at least 1 (protobuf carries them as int64)."""
    if not 1 <= value <= INT64_MAX:
        raise _fail()
    return value


def validate_email(email: str) -> str:
    if len(email) > _EMAIL_MAX or _EMAIL.fullmatch(email) is None:
        raise _fail()
    return email


def validate_password(password: str) -> str:
    """8-128 characters: the bounds for new passwords and for login attempts alike."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise _fail()
    return password


def validate_avatar_url(url: str) -> str:
    """An absolute http(s) URL with a host."""
    if len(url) > _URL_MAX or any(ch.isspace() for ch in url):
        raise _fail()
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise _fail() from error
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise _fail()
    return url
