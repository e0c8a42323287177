"""Signed and anchored chain heads: each head carries its holder's signature and time
(audit chain, batch ledgers, review chains), the spoke keeps the hub's signed acknowledgements
of its batch heads, and both sides keep countersigned audit heads.

Triggers: the receipts and the anchored heads are append-only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = ("hub_receipts", "anchored_heads")
MESSAGE = "is append-only: a kept head is never changed or deleted"
SIGNED = (("chain_heads", "at", "signature"), ("batches", "head_at", "head_signature"),
          ("batch_reviews", "head_at", "head_signature"))  # fmt: skip


def upgrade() -> None:
    for table, at, signature in SIGNED:
        op.add_column(table, sa.Column(at, sa.String(length=27), nullable=True))
        op.add_column(table, sa.Column(signature, sa.String(length=100), nullable=True))
    op.create_table(
        "hub_receipts",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("last_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("hub", sa.String(length=12), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_hub_receipts_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "last_seq", name=op.f("pk_hub_receipts")),
    )
    op.create_table(
        "anchored_heads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain", sa.String(length=80), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("countersigned_by", sa.String(length=12), nullable=True),
        sa.Column("countersigned_at", sa.String(length=27), nullable=True),
        sa.Column("countersignature", sa.String(length=100), nullable=True),
        sa.Column("kept_at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchored_heads")),
    )
    op.create_index("ix_anchored_heads_chain_seq", "anchored_heads", ["chain", "seq"])
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
    op.drop_index("ix_anchored_heads_chain_seq", table_name="anchored_heads")
    op.drop_table("anchored_heads")
    op.drop_table("hub_receipts")
    # In place (SQLite 3.35+): a batch copy of the table would drop its triggers, and with
    # foreign keys on it cannot drop a table that other rows refer to (batches).
    for table, at, signature in SIGNED:
        op.drop_column(table, signature)
        op.drop_column(table, at)
