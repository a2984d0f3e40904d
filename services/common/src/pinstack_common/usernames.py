"""Usernames: the one place that decides what a username may be and when two are the same.

A username has two forms. The **display form** is what the user typed, in NFC, and is what
every answer shows. The **canonical form** (:func:`canonical_username`) is the key that
uniqueness and every lookup compare: two usernames are the same account's exactly when their
canonical forms are equal. It is computed here, in Python, and stored (``users.username_canonical``
in the user service, with the unique index on it), never recomputed by PostgreSQL, whose
``lower()`` depends on the database's collation and folds differently from Python (``İ``).

The rules are documented in ``docs/input-validation.md`` ("Usernames: canonical form").
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from pinstack_common.errors import InvalidArgumentError

__all__ = [
    "USERNAME_MAX",
    "USERNAME_MIN",
    "canonical_username",
    "validate_username",
]

USERNAME_MIN, USERNAME_MAX = 3, 32

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): characters that render as
# nothing. NFKC_Casefold deletes them; Python's casefold() and NFKC do not, so we do it here.
# Most are category Cf (zero-width space/joiners, soft hyphen, bidi controls, word joiner, BOM);
# the others are fillers, variation selectors and reserved code points.
_DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

# Invisible, control, private-use, unassigned and surrogate code points, and separators.
_REJECTED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zs", "Zl", "Zp"})

# Scripts that never count as a second script: digits, punctuation, "_" (Common) and combining
# marks that take the script of their base (Inherited).
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
# UTS #39 "Highly Restrictive": one script, or one of these combinations in which the scripts are
# written together (Japanese, Chinese with Bopomofo, Korean), each with Latin.
_SCRIPT_COMBINATIONS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _fail() -> InvalidArgumentError:
    # Imported here: ``validation`` imports this module (it re-exports the username rules).
    from pinstack_common.validation import VALIDATION_FAILED

    return InvalidArgumentError(VALIDATION_FAILED)


def _is_default_ignorable(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _DEFAULT_IGNORABLE)


def canonical_username(username: str) -> str:
    """The uniqueness and lookup key: NFKC_Casefold as Unicode defines it, in Python.

    Default-ignorable characters are removed, then NFKC, ``str.casefold()`` and NFKC again (the
    fold can produce characters NFKC changes, e.g. ``ΐ``). So ``İqX``, ``i̇qX`` (``i`` + U+0307)
    and ``İQX`` are one key, and so are fullwidth ``ADMIN`` (U+FF21...) and ``admin``. Total and
    idempotent: every string has a key, and the key of a key is itself.
    """
    visible = "".join(char for char in username if not _is_default_ignorable(char))
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())


@lru_cache(maxsize=4096)
def _script(char: str) -> str:
    # Imported here: the library reads its JSON tables when imported (no I/O at import time).
    from confusable_homoglyphs import categories  # type: ignore[import-untyped]

    return str(categories.alias(char))


def _single_script(text: str) -> bool:
    scripts = {_script(char) for char in text} - _NEUTRAL_SCRIPTS
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _SCRIPT_COMBINATIONS)


def _forbidden(char: str) -> bool:
    return (
        char == "@"
        or char.isspace()
        or unicodedata.category(char) in _REJECTED_CATEGORIES
        or _is_default_ignorable(char)
    )


def validate_username(username: str) -> str:
    """The display form (NFC) of an acceptable new username; else ``validation failed``.

    Accepted: 3-32 characters (after NFC); none of them whitespace, ``@`` (a login containing
    ``@`` is an email), a control, format (zero-width, bidi control, soft hyphen), private-use,
    unassigned or other default-ignorable character; not starting with a combining mark; and
    the canonical form holds no whitespace or ``@`` either (a fullwidth ``@``, U+FF20, and some
    ligatures become them under NFKC). Letters all come from one script, Common and Inherited
    aside (so ``paypal`` spelt with a Cyrillic ``a``, U+0430, is refused), except Latin with Han
    and Hiragana/Katakana, Bopomofo or Hangul. This applies to names being registered or
    chosen, not to lookups: an account named under older rules is still found by its name.
    """
    display = unicodedata.normalize("NFC", username)
    if not USERNAME_MIN <= len(display) <= USERNAME_MAX:
        raise _fail()
    if any(_forbidden(char) for char in display):
        raise _fail()
    if unicodedata.category(display[0]).startswith("M"):
        raise _fail()
    canonical = canonical_username(display)
    if "@" in canonical or any(char.isspace() for char in canonical):
        raise _fail()
    if not _single_script(canonical):
        raise _fail()
    return display
