"""QA review at the hub: each batch's review chain (sealed by the hub, synced back to the spoke)
and its disposition (released or rejected) as a projection, on both roles.

Triggers: the review chain is append-only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = ("batch_review_entries",)
MESSAGE = "is append-only: a review record is never changed or deleted"


def upgrade() -> None:
    op.create_table(
        "batch_review_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("terminal", sa.String(length=200), nullable=True),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_username", sa.String(length=32), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_batch_review_entries_seq_positive")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_review_entries_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "seq", name=op.f("pk_batch_review_entries")),
        sa.UniqueConstraint("batch_id", "prev", name="uq_batch_review_entries_batch_prev"),
        sa.UniqueConstraint("hash", name=op.f("uq_batch_review_entries_hash")),
    )
    op.create_table(
        "batch_reviews",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("decision", sa.String(length=12), nullable=True),
        sa.Column("decided_at", sa.String(length=27), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('released', 'rejected')",
            name=op.f("ck_batch_reviews_known_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_reviews_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_batch_reviews")),
    )
    op.create_index("ix_batch_reviews_decision", "batch_reviews", ["decision"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
                )
        return
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    op.drop_index("ix_batch_reviews_decision", table_name="batch_reviews")
    op.drop_table("batch_reviews")
    op.drop_table("batch_review_entries")
