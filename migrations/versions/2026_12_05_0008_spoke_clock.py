"""Each spoke's clock as the hub last measured it: the offset of its signed request's timestamp
from the hub's clock at receipt, and when that was measured (shown on the Network page).

Spokes are never deleted (migration 0004's trigger); these columns are updated in place on
every signed request, like ``last_seen_at``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spokes", sa.Column("clock_offset_seconds", sa.Float(), nullable=True))
    op.add_column(
        "spokes", sa.Column("clock_measured_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # In place (SQLite 3.35+ drops a column without copying the table, so its triggers stay).
    op.drop_column("spokes", "clock_measured_at")
    op.drop_column("spokes", "clock_offset_seconds")
