"""Who may do what: access-token verification, session revocation, ownership checks, and rate
limits that fail open when their store is lost."""
