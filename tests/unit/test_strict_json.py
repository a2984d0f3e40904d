"""Strict JSON in, valid JSON out: the parser, the read-time sanitiser, and both read paths
(the notification service's wire form, which the live push uses, and the gateway's ``N``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pinstack_common.strict_json import JSONRuleError, loads, sanitised
from pinstack_gateway.routes.notifications import notification_json
from pinstack_notification.events import to_proto
from pinstack_notification.repository import NotificationRecord


@pytest.mark.parametrize(
    "document",
    ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400", "[-1e400]", '"a\\u0000"', '"\\ud800"',
     '{"\\udc00": 1}', b'"\xed\xa0\x80"'],
)  # fmt: skip
def test_loads_refuses_what_no_service_can_store(document: str | bytes) -> None:
    with pytest.raises(JSONRuleError):
        loads(document)


@pytest.mark.parametrize("document", ["{", "[1,]", b"\xff", "[" * 100_000 + "]" * 100_000])
def test_loads_refuses_what_is_not_json_as_a_plain_value_error(document: str | bytes) -> None:
    with pytest.raises((ValueError, RecursionError)) as refused:
        loads(document)
    assert not isinstance(refused.value, JSONRuleError)


def test_loads_keeps_finite_values_and_paired_surrogates() -> None:
    document = '{"x": [1.5e308, 5e-324, 12345678901234567890], "e": "\\ud83d\\ude00"}'
    assert loads(document) == {"x": [1.5e308, 5e-324, 12345678901234567890], "e": "\U0001f600"}


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ('{"x":NaN,"y":[Infinity,-Infinity,1e400],"z":1.5}',
         '{"x":null,"y":[null,null,null],"z":1.5}'),
        ("NaN", "null"),
        ('{"ok":[1,"a"]}', '{"ok":[1,"a"]}'),
        ("not json", None),
    ],
)  # fmt: skip
def test_sanitised_makes_stored_text_valid_json(stored: str, served: str | None) -> None:
    assert sanitised(stored) == served


def _record(payload: str | None) -> NotificationRecord:
    return NotificationRecord(
        id=1, user_id=2, type="t", is_read=False, payload=payload,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def test_service_wire_form_and_gateway_json_never_carry_non_finite_numbers() -> None:
    wire = to_proto(_record('{"x":NaN,"y":Infinity}'))
    assert json.loads(wire.payload_json) == {"x": None, "y": None}
    wire.payload_json = '{"x":NaN,"y":[1e400]}'  # from an older service version
    body = notification_json(wire)
    assert body["payload"] == {"x": None, "y": [None]}
    json.dumps(body, allow_nan=False)  # what the feed, GET and the WebSocket send
    wire.payload_json = "{broken"
    assert "payload" not in notification_json(wire)
