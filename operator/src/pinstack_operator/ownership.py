"""Who owns a database or role on a shared PostgreSQL server, recorded on the object itself.

Several stacks (namespaces, clusters) may share one PostgreSQL server, and nothing in the
server says which stack a database belongs to. The operator writes a marker into the object's
comment (``COMMENT ON DATABASE`` / ``COMMENT ON ROLE``; any role can read it back with
``shobj_description``): the owning stack's uid and name and, on the role, a fingerprint of the
password it was last given, so the password is only sent again when it changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

__all__ = ["Marker", "password_fingerprint", "password_matches"]

_UID_KEY = "pinstack.io/stack-uid"
_STACK_KEY = "pinstack.io/stack"
_PASSWORD_KEY = "pinstack.io/password"  # noqa: S105 - a key name; its value is a digest
# PBKDF2 as in SCRAM-SHA-256 (RFC 7677): the comment is world-readable, so only a salted,
# iterated digest of the (random, 192-bit) password is stored.
_ITERATIONS = 4096


@dataclass(frozen=True, kw_only=True)
class Marker:
    """The ownership marker in a database's or role's comment."""

    stack_uid: str
    stack: str  # ``namespace/name``, for whoever reads the comment
    password: str = ""  # a ``password_fingerprint``; roles only

    def comment(self) -> str:
        data = {_UID_KEY: self.stack_uid, _STACK_KEY: self.stack}
        if self.password:
            data[_PASSWORD_KEY] = self.password
        return json.dumps(data, sort_keys=True)

    @classmethod
    def parse(cls, comment: str | None) -> Marker | None:
        """The marker in ``comment``; ``None`` for no comment or someone else's text."""
        try:
            data = json.loads(comment or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get(_UID_KEY), str):
            return None
        return cls(
            stack_uid=data[_UID_KEY],
            stack=str(data.get(_STACK_KEY, "")),
            password=str(data.get(_PASSWORD_KEY, "")),
        )


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def password_fingerprint(password: str) -> str:
    """``pbkdf2-sha256$<iterations>$<salt>$<digest>`` with a fresh salt."""
    salt = secrets.token_bytes(16)
    return f"pbkdf2-sha256${_ITERATIONS}${_b64(salt)}${_b64(_derive(password, salt, _ITERATIONS))}"


def password_matches(password: str, fingerprint: str) -> bool:
    """Whether ``fingerprint`` was made from ``password`` (``False`` for anything malformed)."""
    try:
        scheme, iterations, salt, digest = fingerprint.split("$")
        if scheme != "pbkdf2-sha256":
            return False
        expected = base64.b64decode(digest)
        actual = _derive(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)
