"""Async engines for a ``PINSTACK_DATABASE_URL``, with libpq's TLS parameters understood.

Every PostgreSQL client and cloud console writes TLS into the URL the libpq way:
``?sslmode=verify-full&sslrootcert=/path/ca.crt``. SQLAlchemy's asyncpg dialect hands URL
parameters to ``asyncpg.connect`` as keyword arguments, which knows neither name (it fails with
``unexpected keyword argument 'sslmode'``), so :func:`create_engine` takes them out of the URL and
gives asyncpg its ``ssl`` argument instead: for ``verify-ca``/``verify-full`` an
:class:`ssl.SSLContext` trusting exactly the CA bundle in ``sslrootcert`` (the system's trust
store when it is absent), for the weaker modes the mode itself. asyncpg's own ``ssl=<mode>``
parameter is read as a synonym of ``sslmode``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["SSL_MODES", "DatabaseTlsError", "create_engine", "split_tls"]

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_VERIFYING = ("verify-ca", "verify-full")


class DatabaseTlsError(ValueError):
    """The URL's TLS parameters are inconsistent or name a CA bundle that cannot be read."""


def _tls_argument(sslmode: str | None, sslrootcert: str | None) -> str | ssl.SSLContext | None:
    if sslmode is not None and sslmode not in SSL_MODES:
        raise DatabaseTlsError(
            f"PINSTACK_DATABASE_URL: sslmode={sslmode!r} is not one of {', '.join(SSL_MODES)}"
        )
    if sslrootcert is not None and sslmode not in _VERIFYING:
        # libpq would silently verify under `require` too; say what the URL actually does.
        raise DatabaseTlsError(
            "PINSTACK_DATABASE_URL: sslrootcert is only used with sslmode=verify-ca or "
            f"sslmode=verify-full (got sslmode={sslmode or 'unset'})"
        )
    if sslmode not in _VERIFYING:
        return sslmode
    if sslrootcert is None:
        context = ssl.create_default_context()
    else:
        if not Path(sslrootcert).is_file():
            raise DatabaseTlsError(
                f"PINSTACK_DATABASE_URL: sslrootcert {sslrootcert} is not a readable file "
                "(the CA bundle that signed the server's certificate)"
            )
        try:
            context = ssl.create_default_context(cafile=sslrootcert)
        except ssl.SSLError as error:
            raise DatabaseTlsError(
                f"PINSTACK_DATABASE_URL: sslrootcert {sslrootcert} holds no PEM certificate: "
                f"{error}"
            ) from error
    # verify-ca trusts any certificate the CA signed, whatever host name it carries.
    context.check_hostname = sslmode == "verify-full"
    return context


def split_tls(url: str | URL) -> tuple[URL, dict[str, Any]]:
    """``url`` without its TLS parameters, and the ``connect_args`` that carry them."""
    parsed = make_url(url)
    query = dict(parsed.query)
    modes = {str(query.pop(name)) for name in ("sslmode", "ssl") if name in query}
    if len(modes) > 1:
        raise DatabaseTlsError(
            f"PINSTACK_DATABASE_URL: ssl and sslmode disagree ({' vs '.join(sorted(modes))})"
        )
    root = query.pop("sslrootcert", None)
    argument = _tls_argument(next(iter(modes), None), None if root is None else str(root))
    stripped = parsed.set(query=query)
    return stripped, ({} if argument is None else {"ssl": argument})


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """``create_async_engine`` for a Pinstack database URL (TLS parameters as above)."""
    stripped, connect_args = split_tls(url)
    return create_async_engine(stripped, connect_args=connect_args, **kwargs)
