"""Domain events: the transactional outbox, its relay, transports and idempotent consumers."""
