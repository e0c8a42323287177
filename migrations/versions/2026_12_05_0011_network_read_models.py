"""Network read models at the hub: batch summaries, critical values, milestones; sync log indexes.

Three projections of the received ledgers and their review chains, kept by ingest and review in
the same transaction (``mes network rebuild`` recomputes them from the chains):
``batch_summaries`` (one row a batch: the QA queue and the live board), ``parameter_results``
(each critical numeric value as it stands) and ``batch_milestones`` (the vein-to-vein points).
They are projections, not GMP records: no append-only triggers. The sync log gets the indexes
the network page's queries need (each spoke's last ingest, the newest refusals), and the
open deviations an index in the order the page lists them.

The tables start empty: on a hub that already holds batches, run ``mes network rebuild`` once
after the upgrade.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH_STATUSES = "status IN ('created', 'in_progress', 'on_hold', 'complete', 'aborted')"
QA_STATES = "qa_state IN ('at_spoke', 'awaiting_review', 'under_review', 'released', 'rejected')"


def _utc(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=27), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batch_summaries",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("recipe_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("qa_state", sa.String(length=16), nullable=False),
        sa.Column("current_phase", sa.String(length=200), nullable=True),
        _utc("next_timer_at", nullable=True),
        sa.Column("open_deviations", sa.Integer(), nullable=False),
        sa.Column("exceptions", sa.Integer(), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        _utc("newest_entry_at"),
        _utc("received_at", nullable=True),
        _utc("created_at"),
        _utc("started_at", nullable=True),
        _utc("completed_at", nullable=True),
        _utc("decided_at", nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("review_digest", sa.String(length=16), nullable=False),
        sa.CheckConstraint(BATCH_STATUSES, name=op.f("ck_batch_summaries_known_status")),
        sa.CheckConstraint(QA_STATES, name=op.f("ck_batch_summaries_known_qa_state")),
        sa.CheckConstraint(
            "open_deviations >= 0 AND exceptions >= 0",
            name=op.f("ck_batch_summaries_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_summaries_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_batch_summaries")),
    )
    op.create_index("ix_batch_summaries_queue", "batch_summaries", ["qa_state", "created_at"])
    op.create_index("ix_batch_summaries_site", "batch_summaries", ["site", "status"])
    op.create_index("ix_batch_summaries_recipe", "batch_summaries", ["recipe_code", "status"])
    op.create_index("ix_batch_summaries_status", "batch_summaries", ["status", "created_at"])
    op.create_table(
        "parameter_results",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=False),
        sa.Column("value_id", sa.String(length=48), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("recipe_version", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("parameter", sa.String(length=97), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("criticality", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        _utc("recorded_at"),
        _utc("corrected_at", nullable=True),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "criticality IN ('cpp', 'cqa', 'ipc')",
            name=op.f("ck_parameter_results_known_criticality"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_parameter_results_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "phase_id", "value_id", name=op.f("pk_parameter_results")
        ),
    )
    op.create_index(
        "ix_parameter_results_parameter",
        "parameter_results",
        ["recipe_code", "parameter", "recorded_at"],
    )
    op.create_index("ix_parameter_results_site", "parameter_results", ["site"])
    op.create_table(
        "batch_milestones",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("milestone", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        _utc("at"),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.CheckConstraint(
            "source IN ('recipe', 'event')", name=op.f("ck_batch_milestones_known_source")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_milestones_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "milestone", name=op.f("pk_batch_milestones")),
    )
    op.create_index("ix_batch_milestones_recipe", "batch_milestones", ["recipe_code", "milestone"])
    op.create_index("ix_batch_milestones_site", "batch_milestones", ["site"])
    op.create_index(
        "ix_sync_events_action_outcome_peer_at", "sync_events", ["action", "outcome", "peer", "at"]
    )
    op.create_index("ix_sync_events_outcome_id", "sync_events", ["outcome", "id"])
    op.create_index("ix_deviations_status_raised_at", "deviations", ["status", "raised_at"])


def downgrade() -> None:
    op.drop_index("ix_deviations_status_raised_at", table_name="deviations")
    op.drop_index("ix_sync_events_outcome_id", table_name="sync_events")
    op.drop_index("ix_sync_events_action_outcome_peer_at", table_name="sync_events")
    for table, indexes in (
        ("batch_milestones", ("ix_batch_milestones_site", "ix_batch_milestones_recipe")),
        ("parameter_results", ("ix_parameter_results_site", "ix_parameter_results_parameter")),
        (
            "batch_summaries",
            (
                "ix_batch_summaries_status",
                "ix_batch_summaries_recipe",
                "ix_batch_summaries_site",
                "ix_batch_summaries_queue",
            ),
        ),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
