"""``/api/v1/notification``: the caller's feed, reads, deletes and ``send``.

Ownership is enforced by the notification service from the forwarded token; the gateway only
parses, calls one RPC and shapes the contract's JSON.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictInt, StrictStr

from pinstack.notification.v1 import notification_pb2
from pinstack_common.errors import InvalidArgumentError
from pinstack_common.strict_json import sanitised
from pinstack_common.validation import VALIDATION_FAILED, positive_id
from pinstack_gateway.envelope import ok, rfc3339
from pinstack_gateway.identity import Caller
from pinstack_gateway.openapi import INVALID_INPUT, TOO_MANY_REQUESTS, answers
from pinstack_gateway.routes import openapi_links
from pinstack_gateway.schemas import (
    Done,
    Notification,
    NotificationFeed,
    Sent,
    UnreadCount,
    request_example,
)
from pinstack_gateway.upstreams import proxy
from pinstack_gateway.validation import Id, Limit, Page, StrictRoute, page_number

__all__ = ["notification_json", "router"]

router = APIRouter(prefix="/api/v1/notification", tags=["notifications"], route_class=StrictRoute)


class SendBody(BaseModel):
    model_config = request_example({"user_id": 2, "type": "greeting", "payload": {"text": "hello"}})

    user_id: StrictInt = 0
    type: StrictStr = ""
    payload: Any = None


def notification_json(item: notification_pb2.Notification) -> dict[str, Any]:
    """The contract's ``N``: ``payload`` is the JSON value itself, omitted when there is none;
    ``sender_id`` (an addition) is the user who sent it, omitted when the system produced it.

    Defensive: whatever was stored, the payload that goes out is valid JSON (non-finite numbers
    become null, text that does not parse is left out), so a stored value never fails a read.
    """
    body: dict[str, Any] = {
        "id": item.id,
        "user_id": item.user_id,
        "type": item.type,
        "is_read": item.is_read,
        "created_at": rfc3339(item.created_at),
    }
    if item.sender_id:  # who sent it through /send; absent on what the system produced
        body["sender_id"] = item.sender_id
    if item.payload_json and (clean := sanitised(item.payload_json)) is not None:
        body["payload"] = json.loads(clean)
    return body


def _id(notification_id: int) -> notification_pb2.NotificationIdRequest:
    return notification_pb2.NotificationIdRequest(id=positive_id(notification_id))


_OWNED = {403: ["access to notification denied"], 404: ["notification not found"]}


@router.get("/feed", **answers(NotificationFeed))
async def feed(
    request: Request, _caller: Caller, page: Page = 1, limit: Limit = 10
) -> JSONResponse:
    page_number(page, limit, message=INVALID_INPUT)
    found = await proxy(request, "notification").notification.GetFeed(
        notification_pb2.GetFeedRequest(page=page, limit=limit)
    )
    return ok(
        {
            "notifications": [notification_json(item) for item in found.notifications],
            "total": found.total,
            "page": page,
            "limit": limit,
            "total_pages": -(-found.total // limit),  # ceil without floats
        }
    )


@router.get("/unread-count", **answers(UnreadCount))
async def unread_count(request: Request, _caller: Caller) -> JSONResponse:
    found = await proxy(request, "notification").notification.GetUnreadCount(
        notification_pb2.GetUnreadCountRequest()
    )
    return ok({"count": found.count})


@router.put("/read-all", **answers(Done))
async def read_all(request: Request, _caller: Caller) -> JSONResponse:
    await proxy(request, "notification").notification.MarkAllRead(
        notification_pb2.MarkAllReadRequest()
    )
    return ok({"success": True, "message": "All notifications marked as read"})


_SENT_LINKS = openapi_links(
    "notification_id",
    "/data/notification_id",
    "get_notification_api_v1_notification__notification_id__get",
    "mark_read_api_v1_notification__notification_id__read_put",
    "delete_notification_api_v1_notification__notification_id__delete",
)


@router.post(
    "/send",
    **answers(Sent, errors={404: ["user not found"], 429: [TOO_MANY_REQUESTS]}),
    openapi_extra={"responses": {"200": {"links": _SENT_LINKS}}},
)
async def send(body: SendBody, request: Request, _caller: Caller) -> JSONResponse:
    positive_id(body.user_id)
    if not body.type.strip() or len(body.type) > 64:
        raise InvalidArgumentError(VALIDATION_FAILED)
    payload = (
        ""
        if body.payload is None
        else json.dumps(body.payload, separators=(",", ":"), allow_nan=False)
    )
    sent = await proxy(request, "notification").notification.SendNotification(
        notification_pb2.SendNotificationRequest(
            user_id=body.user_id, type=body.type, payload_json=payload
        )
    )
    return ok(
        {"notification_id": sent.notification_id, "message": "Notification sent successfully"}
    )


@router.get("/{notification_id}", **answers(Notification, errors=_OWNED))
async def get_notification(notification_id: Id, request: Request, _caller: Caller) -> JSONResponse:
    item = await proxy(request, "notification").notification.GetNotification(_id(notification_id))
    return ok(notification_json(item))


@router.put("/{notification_id}/read", **answers(Done, errors=_OWNED))
async def mark_read(notification_id: Id, request: Request, _caller: Caller) -> JSONResponse:
    await proxy(request, "notification").notification.MarkRead(_id(notification_id))
    return ok({"success": True, "message": "Notification marked as read"})


@router.delete("/{notification_id}", **answers(Done, errors=_OWNED))
async def delete_notification(
    notification_id: Id, request: Request, _caller: Caller
) -> JSONResponse:
    await proxy(request, "notification").notification.DeleteNotification(_id(notification_id))
    return ok({"success": True, "message": "Notification removed successfully"})
