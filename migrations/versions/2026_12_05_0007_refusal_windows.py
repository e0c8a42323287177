"""Refused anonymous attempts counted per source and window (login, enrollment, sync requests).

Not a GMP table: a counter updated in place and deleted once its window is summarised in the
audit trail or the sync log, so it has no append-only triggers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refusal_windows",
        sa.Column("attempt", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("turned_away", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("attempt", "source", name=op.f("pk_refusal_windows")),
    )
    op.create_index("ix_refusal_windows_started", "refusal_windows", ["started"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refusal_windows_started", table_name="refusal_windows")
    op.drop_table("refusal_windows")
