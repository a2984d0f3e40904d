"""The post list's ``created_after``/``created_before`` parsing: every string is a Timestamp or
400 ``validation failed``, never an exception that becomes a 500 (found by the property tests)."""

from __future__ import annotations

import pytest

from pinstack_common.errors import InvalidArgumentError
from pinstack_gateway.routes.posts import _timestamp


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # UTC is before year 1
        "9999-12-31T23:59:59-01:00",  # UTC is after year 9999
        "0000-01-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "yesterday",
    ],
)
def test_a_time_outside_the_timestamp_range_is_validation_failed(value: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        _timestamp(value)
    assert refused.value.message == "validation failed"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0001-01-01T00:00:00Z", -62135596800),
        ("0001-01-01T00:00:00-01:00", -62135593200),
        ("9999-12-31T23:59:59Z", 253402300799),
        ("2024-01-01T00:00:00+02:00", 1704060000),
        ("2024-01-01t00:00:00.5z", 1704067200),
    ],
)
def test_a_time_inside_the_range_keeps_its_instant(value: str, seconds: int) -> None:
    assert _timestamp(value).seconds == seconds
