"""Alembic environment: runs online against the engine that the caller passes in."""

from __future__ import annotations

from alembic import context

from mes.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    raise SystemExit("Run migrations with 'mes db upgrade' (it supplies the database).")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
