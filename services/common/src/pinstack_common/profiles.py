"""A user's profile, and its one mapping to and from ``pinstack.user.v1.User``.

The user service stores and serves profiles; auth receives one from the user service when it
creates an account and hands it on unchanged (``CreateAccount``). Both speak this type, so the
wire form is mapped in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pinstack.user.v1 import user_pb2
from pinstack_common.timestamps import from_timestamp, to_timestamp

__all__ = ["Profile", "profile_from_proto", "profile_to_proto"]


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


def profile_to_proto(profile: Profile) -> user_pb2.User:
    return user_pb2.User(
        id=profile.id,
        username=profile.username,
        email=profile.email,
        full_name=profile.full_name,
        bio=profile.bio,
        avatar_url=profile.avatar_url,
        created_at=to_timestamp(profile.created_at),
        updated_at=to_timestamp(profile.updated_at),
    )


def profile_from_proto(user: user_pb2.User) -> Profile:
    return Profile(
        id=user.id,
        username=user.username,
        email=user.email,
        full_name=user.full_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        created_at=from_timestamp(user.created_at),
        updated_at=from_timestamp(user.updated_at),
    )
