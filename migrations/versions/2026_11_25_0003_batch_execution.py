"""Batch execution (spoke): the batch ledger and its projections; materials and equipment.

Triggers: the batch ledger and the equipment logbook are append-only; batches, their phases,
values, materials, equipment uses and deviations, and the material, lot and equipment masters
are never deleted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("batch_entries", "equipment_log")
NEVER_DELETED = (
    "batches",
    "batch_phases",
    "batch_values",
    "batch_materials",
    "batch_equipment",
    "deviations",
    "materials",
    "material_lots",
    "equipment",
)
MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
NO_DELETE = "rows are never deleted: GMP records stay for their retention period"


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.CheckConstraint("value >= 0", name=op.f("ck_counters_value_not_negative")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "equipment",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("equipment_class", sa.String(length=48), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column("calibration_due", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('in_service', 'out_of_service')", name=op.f("ck_equipment_known_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment")),
    )
    op.create_index("ix_equipment_class", "equipment", ["equipment_class"], unique=False)
    op.create_table(
        "materials",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_materials")),
    )
    op.create_table(
        "equipment_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("equipment_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("batch_number", sa.String(length=40), nullable=True),
        sa.Column("phase_id", sa.String(length=48), nullable=True),
        sa.Column("by_username", sa.String(length=32), nullable=False),
        sa.Column("by_name", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["equipment_id"], ["equipment.id"], name=op.f("fk_equipment_log_equipment_id_equipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment_log")),
    )
    op.create_index(
        "ix_equipment_log_equipment", "equipment_log", ["equipment_id", "at"], unique=False
    )
    op.create_table(
        "material_lots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('quarantine', 'released', 'rejected')",
            name=op.f("ck_material_lots_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["material_code"],
            ["materials.code"],
            name=op.f("fk_material_lots_material_code_materials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material_lots")),
        sa.UniqueConstraint("lot_number", name=op.f("uq_material_lots_lot_number")),
    )
    op.create_index(
        op.f("ix_material_lots_material_code"), "material_lots", ["material_code"], unique=False
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("recipe_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("installed_recipe_id", sa.String(length=36), nullable=True),
        sa.Column("chain_of_identity", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.String(length=27), nullable=True),
        sa.Column("completed_at", sa.String(length=27), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'in_progress', 'on_hold', 'complete', 'aborted')",
            name=op.f("ck_batches_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["installed_recipe_id"],
            ["installed_recipes.id"],
            name=op.f("fk_batches_installed_recipe_id_installed_recipes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("number", name=op.f("uq_batches_number")),
    )
    op.create_index("ix_batches_status", "batches", ["status"], unique=False)
    op.create_table(
        "batch_entries",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
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
        sa.CheckConstraint("seq >= 1", name=op.f("ck_batch_entries_seq_positive")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_entries_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "seq", name=op.f("pk_batch_entries")),
        sa.UniqueConstraint("batch_id", "prev", name="uq_batch_entries_batch_prev"),
        sa.UniqueConstraint("hash", name=op.f("uq_batch_entries_hash")),
    )
    op.create_table(
        "batch_equipment",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("equipment_id", sa.String(length=40), nullable=False),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_equipment_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "phase_id", "slot", name=op.f("pk_batch_equipment")),
    )
    op.create_index(
        "ix_batch_equipment_equipment", "batch_equipment", ["equipment_id", "in_use"], unique=False
    )
    op.create_table(
        "batch_materials",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.JSON(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_materials_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "phase_id", "material_code", name=op.f("pk_batch_materials")
        ),
    )
    op.create_index("ix_batch_materials_lot", "batch_materials", ["lot_number"], unique=False)
    op.create_table(
        "batch_phases",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.String(length=27), nullable=True),
        sa.Column("performed_at", sa.String(length=27), nullable=True),
        sa.Column("performed_by", sa.String(length=32), nullable=True),
        sa.Column("verified_at", sa.String(length=27), nullable=True),
        sa.Column("verified_by", sa.String(length=32), nullable=True),
        sa.Column("needs_verification", sa.Boolean(), nullable=False),
        sa.Column("earliest_start", sa.String(length=27), nullable=True),
        sa.Column("latest_start", sa.String(length=27), nullable=True),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('locked', 'ready', 'in_progress', 'performed', 'verified', 'skipped')",
            name=op.f("ck_batch_phases_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_phases_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "phase_id", name=op.f("pk_batch_phases")),
    )
    op.create_table(
        "batch_values",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=False),
        sa.Column("value_id", sa.String(length=48), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=True),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.String(length=27), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_values_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "phase_id", "value_id", name=op.f("pk_batch_values")),
    )
    op.create_table(
        "deviations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("phase_id", sa.String(length=48), nullable=True),
        sa.Column("value_id", sa.String(length=48), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.String(length=27), nullable=False),
        sa.Column("raised_by", sa.String(length=32), nullable=False),
        sa.Column("acknowledged_at", sa.String(length=27), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=32), nullable=True),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged')", name=op.f("ck_deviations_known_status")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_deviations_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deviations")),
    )
    op.create_index("ix_deviations_batch", "deviations", ["batch_id"], unique=False)
    op.create_index("ix_deviations_status", "deviations", ["status"], unique=False)
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_index("ix_deviations_status", table_name="deviations")
    op.drop_index("ix_deviations_batch", table_name="deviations")
    op.drop_table("deviations")
    op.drop_table("batch_values")
    op.drop_table("batch_phases")
    op.drop_index("ix_batch_materials_lot", table_name="batch_materials")
    op.drop_table("batch_materials")
    op.drop_index("ix_batch_equipment_equipment", table_name="batch_equipment")
    op.drop_table("batch_equipment")
    op.drop_table("batch_entries")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_table("batches")
    op.drop_index(op.f("ix_material_lots_material_code"), table_name="material_lots")
    op.drop_table("material_lots")
    op.drop_index("ix_equipment_log_equipment", table_name="equipment_log")
    op.drop_table("equipment_log")
    op.drop_table("materials")
    op.drop_index("ix_equipment_class", table_name="equipment")
    op.drop_table("equipment")
    op.drop_table("counters")


def create_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
                )
        for table in NEVER_DELETED:
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} {NO_DELETE}'); END"
            )
        return
    # PostgreSQL: mes_refuse_change() and mes_refuse_delete() come from migration 0001.
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
        )
    for table in NEVER_DELETED:
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_delete()"
        )
    for table in APPEND_ONLY + NEVER_DELETED:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        for table in NEVER_DELETED:
            op.execute(f"DROP TRIGGER {table}_no_delete")
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    for table in NEVER_DELETED:
        op.execute(f"DROP TRIGGER {table}_no_delete ON {table}")
    for table in APPEND_ONLY + NEVER_DELETED:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
