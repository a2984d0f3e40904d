"""The canonical form of usernames and the rules for new ones (pinstack_common.usernames)."""

from __future__ import annotations

import pytest

from pinstack_common.errors import InvalidArgumentError
from pinstack_common.usernames import canonical_username, validate_username

DOTTED_CAPITAL_I = "\u0130qX"  # İqX: LATIN CAPITAL LETTER I WITH DOT ABOVE
DOTTED_SMALL_I = "i\u0307qX"  # i + COMBINING DOT ABOVE
FULLWIDTH_ADMIN = "\uff21\uff24\uff2d\uff29\uff2e"
CYRILLIC_A_PAYPAL = "p\u0430ypal"


@pytest.mark.parametrize(
    ("username", "canonical"),
    [
        ("admin", "admin"),
        ("Admin", "admin"),
        ("ADMIN", "admin"),
        (FULLWIDTH_ADMIN, "admin"),
        (DOTTED_CAPITAL_I, "i\u0307qx"),
        (DOTTED_SMALL_I, "i\u0307qx"),
        ("\u0130QX", "i\u0307qx"),
        ("Stra\u00dfe", "strasse"),  # ß folds to ss
        ("STRASSE", "strasse"),
        ("\ufb01x", "fix"),  # the fi ligature
        ("e\u0301cole", "\u00e9cole"),  # decomposed é: composed again
        ("\u00c9cole", "\u00e9cole"),
        ("\u03a3\u03bf\u03c6\u03af\u03b1", "\u03c3\u03bf\u03c6\u03af\u03b1"),
        ("\u03c3\u03bf\u03c6\u03af\u03b1\u03c2", "\u03c3\u03bf\u03c6\u03af\u03b1\u03c3"),  # final ς
        ("\u2460dmin", "1dmin"),  # circled digit one
        ("admin\u200b", "admin"),  # zero-width space: default-ignorable, removed
        ("\u202eadmin", "admin"),  # right-to-left override
        ("ad\u00admin", "admin"),  # soft hyphen
        ("admin\ufe0f", "admin"),  # variation selector
        ("\u2066admin\u2069", "admin"),  # bidi isolates
        (CYRILLIC_A_PAYPAL, "p\u0430ypal"),  # folding does not map across scripts
        ("user_01", "user_01"),
        ("\uff3f\uff10", "_0"),
    ],
)
def test_canonical_form(username: str, canonical: str) -> None:
    assert canonical_username(username) == canonical


def test_both_dotted_i_spellings_are_one_name() -> None:
    assert canonical_username(DOTTED_CAPITAL_I) == canonical_username(DOTTED_SMALL_I)
    # What PostgreSQL-style lower() and Python's lower() disagreed on.
    assert DOTTED_CAPITAL_I.lower() == DOTTED_SMALL_I.lower()
    assert DOTTED_CAPITAL_I != DOTTED_SMALL_I


def test_the_canonical_form_is_idempotent_for_every_code_point() -> None:
    changed = [
        hex(point)
        for point in range(0x110000)
        if not 0xD800 <= point <= 0xDFFF
        and canonical_username(key := canonical_username(chr(point))) != key
    ]
    assert changed == []


@pytest.mark.parametrize(
    ("username", "display"),
    [
        ("alice", "alice"),
        ("Alice_01", "Alice_01"),
        ("a.b-c", "a.b-c"),
        (DOTTED_CAPITAL_I, DOTTED_CAPITAL_I),
        (DOTTED_SMALL_I, DOTTED_SMALL_I),
        (FULLWIDTH_ADMIN, FULLWIDTH_ADMIN),  # kept as typed; its key is "admin"
        ("e\u0301cole", "\u00e9cole"),  # displayed in NFC
        ("\u0432\u0430\u0441\u044f", "\u0432\u0430\u0441\u044f"),  # all Cyrillic
        ("\u03c3\u03bf\u03c6\u03af\u03b1", "\u03c3\u03bf\u03c6\u03af\u03b1"),  # all Greek
        ("\u5c71\u7530\u305f\u308d\u3046", "\u5c71\u7530\u305f\u308d\u3046"),  # Han + Hiragana
        ("\u30bf\u30ed\u30fc_tokyo", "\u30bf\u30ed\u30fc_tokyo"),  # Katakana + Latin
        ("\ud55c\uad6d\uc5b4abc", "\ud55c\uad6d\uc5b4abc"),  # Hangul + Latin
        ("x" * 32, "x" * 32),
    ],
)
def test_accepted_usernames_keep_their_spelling(username: str, display: str) -> None:
    assert validate_username(username) == display


@pytest.mark.parametrize(
    "username",
    [
        "ab",  # too short
        "x" * 33,  # too long
        "admin\u200b",  # zero-width space
        "ad\u200dmin",  # zero-width joiner
        "\u202eadmin",  # right-to-left override
        "admin\u2066",  # left-to-right isolate
        "admin\u2069",  # pop directional isolate
        "ad\u00admin",  # soft hyphen
        "\ufeffadmin",  # byte order mark
        "admin\ufe0f",  # variation selector
        "ad\u3164min",  # Hangul filler
        "ad\u0007min",  # a control character
        "ad\u0085min",  # next line (a C1 control)
        "ad\ue000min",  # private use
        "ad\U000e0041min",  # a tag character
        "ad min",
        "ad\u00a0min",  # no-break space
        "ad\u3000min",  # ideographic space
        "ad\u2028min",  # line separator
        "ad@min",
        "ad\uff20min",  # fullwidth @ becomes @ under NFKC
        "\ufdfaab",  # a ligature whose NFKC holds spaces
        "\u0301abc",  # starts with a combining mark
        CYRILLIC_A_PAYPAL,  # Latin + Cyrillic
        "\u0440\u0430ypal",  # Cyrillic er and a, then Latin
        "adm\u03b9n",  # Latin + Greek iota
        "\u0432\u0430\u0441\u044fabc",  # Cyrillic + Latin
        "abc\u05d0",  # Latin + Hebrew
        "\u5c71\u7530\u0432\u0430",  # Han + Cyrillic
        "\ud55c\uad6d\u30bf",  # Hangul + Katakana
    ],
)
def test_refused_usernames(username: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^validation failed$"):
        validate_username(username)


def test_validation_re_exports_the_username_rules() -> None:
    from pinstack_common import validation

    assert validation.validate_username is validate_username
