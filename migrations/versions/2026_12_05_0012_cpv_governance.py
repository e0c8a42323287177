"""Continued process verification governance at the hub (issue 16).

Baselines QA froze with an e-signature, equivalence margins QA set, trends (signals of the
control-chart rules) to assess, and QA's signed dispositions of them.

Triggers: all four tables are append-only (a later baseline or margin is a new row; a trend is
detected once and assessed once).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
TABLES = ("cpv_baselines", "cpv_margins", "cpv_trends", "cpv_dispositions")


def _series() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("parameter", sa.String(length=130), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "cpv_baselines",
        *_series(),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("first_number", sa.String(length=40), nullable=False),
        sa.Column("last_number", sa.String(length=40), nullable=False),
        sa.Column("centre", sa.Float(), nullable=False),
        sa.Column("sigma", sa.Float(), nullable=False),
        sa.Column("lcl", sa.Float(), nullable=False),
        sa.Column("ucl", sa.Float(), nullable=False),
        sa.Column("mr_centre", sa.Float(), nullable=False),
        sa.Column("mr_ucl", sa.Float(), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frozen_by", sa.String(length=36), nullable=False),
        sa.Column("signature_seq", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.CheckConstraint(
            "period_to >= period_from", name=op.f("ck_cpv_baselines_period_in_order")
        ),
        sa.CheckConstraint("batches >= 2", name=op.f("ck_cpv_baselines_enough_batches")),
        sa.CheckConstraint("sigma >= 0", name=op.f("ck_cpv_baselines_sigma_not_negative")),
        sa.ForeignKeyConstraint(
            ["frozen_by"], ["users.id"], name=op.f("fk_cpv_baselines_frozen_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cpv_baselines")),
    )
    op.create_index(
        "ix_cpv_baselines_series",
        "cpv_baselines",
        ["recipe_code", "parameter", "unit", "frozen_at"],
    )
    op.create_table(
        "cpv_margins",
        *_series(),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=36), nullable=False),
        sa.Column("signature_seq", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.CheckConstraint("margin > 0", name=op.f("ck_cpv_margins_margin_positive")),
        sa.ForeignKeyConstraint(["set_by"], ["users.id"], name=op.f("fk_cpv_margins_set_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cpv_margins")),
    )
    op.create_index(
        "ix_cpv_margins_series", "cpv_margins", ["recipe_code", "parameter", "unit", "set_at"]
    )
    op.create_table(
        "cpv_trends",
        *_series(),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("first_batch_id", sa.String(length=36), nullable=False),
        sa.Column("last_batch_id", sa.String(length=36), nullable=False),
        sa.Column("first_number", sa.String(length=40), nullable=False),
        sa.Column("last_number", sa.String(length=40), nullable=False),
        sa.Column("words", sa.String(length=1000), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("baseline_id", sa.String(length=36), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["baseline_id"],
            ["cpv_baselines.id"],
            name=op.f("fk_cpv_trends_baseline_id_cpv_baselines"),
        ),
        sa.ForeignKeyConstraint(
            ["first_batch_id"], ["batches.id"], name=op.f("fk_cpv_trends_first_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["last_batch_id"], ["batches.id"], name=op.f("fk_cpv_trends_last_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cpv_trends")),
        sa.UniqueConstraint(
            "recipe_code",
            "parameter",
            "scope",
            "rule",
            "first_batch_id",
            name="uq_cpv_trends_signal",
        ),
    )
    op.create_index("ix_cpv_trends_detected_at", "cpv_trends", ["detected_at"])
    op.create_table(
        "cpv_dispositions",
        sa.Column("trend_id", sa.String(length=36), nullable=False),
        sa.Column("disposition", sa.String(length=12), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.String(length=4000), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=False),
        sa.Column("signature_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "disposition IN ('no_action', 'deviation', 'capa')",
            name=op.f("ck_cpv_dispositions_known_disposition"),
        ),
        sa.CheckConstraint(
            "disposition = 'no_action' OR reference IS NOT NULL",
            name=op.f("ck_cpv_dispositions_reference_given"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_cpv_dispositions_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["trend_id"], ["cpv_trends.id"], name=op.f("fk_cpv_dispositions_trend_id_cpv_trends")
        ),
        sa.PrimaryKeyConstraint("trend_id", name=op.f("pk_cpv_dispositions")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
                )
        return
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in reversed(TABLES):
        if sqlite:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    op.drop_table("cpv_dispositions")
    op.drop_index("ix_cpv_trends_detected_at", table_name="cpv_trends")
    op.drop_table("cpv_trends")
    op.drop_index("ix_cpv_margins_series", table_name="cpv_margins")
    op.drop_table("cpv_margins")
    op.drop_index("ix_cpv_baselines_series", table_name="cpv_baselines")
    op.drop_table("cpv_baselines")
