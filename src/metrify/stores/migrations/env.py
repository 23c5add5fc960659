"""Alembic environment: runs Metrify's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Metrify always hands a connection
    raise RuntimeError("run migrations through metrify.stores.migrate")

context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
