"""Look-back at the hub: what each received batch used, and the look-backs QA opened (issue 17).

``batch_usages``: a read model (one row per batch and thing used: a material lot, an instrument,
a signer, the recipe version), kept by ingest and review like ``batch_summaries`` and rebuilt
from the chains; indexed by subject (kind, identifier) — at PostgreSQL the index INCLUDEs the
batch and the detail, so a look-back reads only the index. It starts empty: on a hub that
already holds batches, run ``mes network rebuild`` once after the upgrade.

``lookbacks``: each look-back QA opened (subject, reason, who, when), append-only (triggers).
The dispositions are entries of the batches' review chains, not rows here.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
KINDS = "IN ('lot', 'instrument', 'operator', 'recipe_version')"


def upgrade() -> None:
    op.create_table(
        "batch_usages",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.CheckConstraint(f"kind {KINDS}", name=op.f("ck_batch_usages_known_kind")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_usages_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "kind", "identifier", name=op.f("pk_batch_usages")),
    )
    op.create_index(
        "ix_batch_usages_subject",
        "batch_usages",
        ["kind", "identifier"],
        postgresql_include=["batch_id", "detail"],
    )
    op.create_table(
        "lookbacks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=36), nullable=False),
        sa.CheckConstraint(f"subject_kind {KINDS}", name=op.f("ck_lookbacks_known_subject_kind")),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["users.id"], name=op.f("fk_lookbacks_opened_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookbacks")),
    )
    op.create_index("ix_lookbacks_opened_at", "lookbacks", ["opened_at"])
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER lookbacks_no_{event.lower()} BEFORE {event} ON lookbacks "
                f"BEGIN SELECT RAISE(ABORT, 'lookbacks {MESSAGE}'); END"
            )
        return
    op.execute(
        "CREATE TRIGGER lookbacks_append_only BEFORE UPDATE OR DELETE ON lookbacks "
        "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER lookbacks_no_truncate BEFORE TRUNCATE ON lookbacks "
        "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER lookbacks_no_update")
        op.execute("DROP TRIGGER lookbacks_no_delete")
    else:
        op.execute("DROP TRIGGER lookbacks_append_only ON lookbacks")
        op.execute("DROP TRIGGER lookbacks_no_truncate ON lookbacks")
    op.drop_index("ix_lookbacks_opened_at", table_name="lookbacks")
    op.drop_table("lookbacks")
    op.drop_index("ix_batch_usages_subject", table_name="batch_usages")
    op.drop_table("batch_usages")
