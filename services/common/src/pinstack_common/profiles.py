"""A user's profile, and its one mapping to and from ``pinstack.user.v1.User``.

The user service stores and serves profiles; auth receives one from the user service when it
creates an account and hands it on unchanged (``CreateAccount``). Both speak this type, so the
wire form is mapped in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pinstack.user.v1 import user_pb2
from pinstack_common.timestamps import from_timestamp, to_timestamp

__all__ = ["Profile", "profile_from_proto", "profile_scalars", "profile_to_proto"]


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    username: str
    email: str
    full_name: str
    bio: str
    avatar_url: str
    created_at: datetime
    updated_at: datetime


# The fields that are the same on both sides; the timestamps are converted.
_SCALARS = ("id", "username", "email", "full_name", "bio", "avatar_url")


def profile_scalars(profile: Profile) -> dict[str, Any]:
    """The fields every message carrying a profile has (``User``, the post service's
    ``Author``): all but the timestamps, as keyword arguments for the message."""
    return {name: getattr(profile, name) for name in _SCALARS}


def profile_to_proto(profile: Profile) -> user_pb2.User:
    return user_pb2.User(
        **profile_scalars(profile),
        created_at=to_timestamp(profile.created_at),
        updated_at=to_timestamp(profile.updated_at),
    )


def profile_from_proto(user: user_pb2.User) -> Profile:
    return Profile(
        **{name: getattr(user, name) for name in _SCALARS},
        created_at=from_timestamp(user.created_at),
        updated_at=from_timestamp(user.updated_at),
    )
