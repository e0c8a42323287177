"""Temperature logger files as received, keyed by SHA-256 (issue 17: custody evidence).

(A deviation's category is 32 characters wide since 0014: "temperature_excursion" is 21.)

A ``logger_imported`` ledger entry names its file by hash; the file itself is kept here, byte
for byte, written in the same transaction as the entry. Append-only: a received file is never
changed or deleted.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
MAX_BYTES = 2 * 1024 * 1024  # mes.core.logger.MAX_BYTES when this migration was written


def upgrade() -> None:
    op.create_table(
        "logger_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            f"size > 0 AND size <= {MAX_BYTES}", name=op.f("ck_logger_files_size_accepted")
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_logger_files")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER logger_files_no_{event.lower()} BEFORE {event} ON logger_files "
                f"BEGIN SELECT RAISE(ABORT, 'logger_files {MESSAGE}'); END"
            )
        return
    op.execute(
        "CREATE TRIGGER logger_files_append_only BEFORE UPDATE OR DELETE ON logger_files "
        "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER logger_files_no_truncate BEFORE TRUNCATE ON logger_files "
        "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER logger_files_no_update")
        op.execute("DROP TRIGGER logger_files_no_delete")
    else:
        op.execute("DROP TRIGGER logger_files_append_only ON logger_files")
        op.execute("DROP TRIGGER logger_files_no_truncate ON logger_files")
    op.drop_table("logger_files")
