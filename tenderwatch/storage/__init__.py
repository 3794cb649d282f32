"""Persistence: SQLModel tables, engine/session, upsert with change log, Alembic migrations."""
