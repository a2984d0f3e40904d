"""Strict JSON (RFC 8259) in, strictly valid JSON out.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON at all) and turns
``1e400`` into ``inf``; it also reads ``"\\u0000"`` and lone surrogates (``"\\ud800"``) into
strings that PostgreSQL, protobuf and UTF-8 encoders refuse. What comes in is read with
:func:`loads`, which refuses all of these; what goes out of storage is passed through
:func:`sanitised`, so a value stored before these rules existed never makes a read fail.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["JSONRuleError", "check_text", "finite", "loads", "sanitised"]

# NUL, and any UTF-16 surrogate (a str holds one only when it is unpaired).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class JSONRuleError(ValueError):
    """Parses as JSON, but holds a value no service can store: a non-finite number, a NUL or an
    unpaired surrogate in a string. The contract's answer is ``validation failed``."""


def _no_constant(name: str) -> Any:
    raise JSONRuleError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRuleError(f"{text} is out of range")
    return value


def check_text(value: str) -> str:
    """``value`` unless it holds a NUL or an unpaired surrogate (then ``JSONRuleError``)."""
    if _BAD_TEXT.search(value) is not None:
        raise JSONRuleError("text holds a NUL or an unpaired surrogate")
    return value


def loads(document: str | bytes) -> Any:
    """Parse ``document`` strictly.

    Raises ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``) or ``RecursionError``
    when it is not JSON, and ``JSONRuleError`` when it is but holds a forbidden value.
    """
    value = json.loads(document, parse_constant=_no_constant, parse_float=_finite_float)
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
    return value


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite(item) for item in value]
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    return value


def sanitised(document: str) -> str | None:
    """Stored JSON text made valid RFC 8259: non-finite numbers become ``null``.

    Text that does not parse at all yields ``None`` (no value) rather than an error: a read must
    never fail on what an older version stored.
    """
    try:
        value = finite(json.loads(document))
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):
        return None
