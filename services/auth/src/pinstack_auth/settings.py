"""Auth service settings (``PINSTACK_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pinstack_common.settings import ServiceSettings

__all__ = ["AuthSettings"]


class AuthSettings(ServiceSettings):
    grpc_port: int = 50052
    # PEM (PKCS#8) Ed25519 private key, as the Kubernetes operator mounts it. Unset: a key is
    # generated once and kept in the auth database, so restarts keep issued tokens valid.
    auth_signing_key_file: Path | None = None
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=1)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=1)
    # How often ended sessions (revoked or expired refresh-token families) are deleted.
    session_purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # How often each replica checks that Redis holds every recorded revocation (the warm
    # marker is there, no write-through is left to replay); a failed write-through wakes it at
    # once, and failing passes retry with backoff up to this same interval.
    revocation_sync_interval_seconds: float = Field(default=2.0, gt=0)
    # `limits` notation ("10/minute; 50/hour"); see ``pinstack_auth.ratelimit``.
    # Attempts on one account from one client address: what stops guessing a password. Counted
    # before the password is checked, atomically, so parallel guesses cannot overshoot it.
    login_failures_per_account_address: str = "10/minute; 50/hour"
    # The account's ceiling over all addresses together (stops guessing from many addresses).
    # Higher than the pair limit, so an attacker from one address cannot lock the owner out:
    # the owner, from another address, gets through until this ceiling is reached. A
    # successful login clears both.
    login_failures_per_account: str = "50/minute; 300/hour"
    # Failed logins (wrong password or unknown login) per client address, over all accounts:
    # stops spraying many accounts. Generous: test suites and NATed offices log in a lot from
    # one address.
    login_failures_per_address: str = "300/minute"
    # Argon2id cost: OWASP's minimum profile (19 MiB, 2 passes, 1 lane). Each hash in flight
    # holds its memory, so at most ``argon2_max_concurrent`` run at once.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_cost_kib: int = Field(default=19 * 1024, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    argon2_max_concurrent: int = Field(default=8, ge=1)
    # Hashes waiting for one of those slots, each for at most ``argon2_queue_timeout_seconds``
    # (well under the gateway's RPC deadline). Beyond either, a request is answered at once with
    # 429 ``too many requests`` and ``Retry-After`` rather than timing out at the gateway.
    argon2_max_queued: int = Field(default=16, ge=0)
    argon2_queue_timeout_seconds: float = Field(default=2.0, gt=0)
