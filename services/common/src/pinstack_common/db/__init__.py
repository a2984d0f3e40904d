"""PostgreSQL: the async database with its read and transaction sessions, and the migration
runner with the kit's own tables."""
