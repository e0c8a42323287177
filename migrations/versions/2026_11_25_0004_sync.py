"""Hub ↔ spoke sync: spokes and enrollment codes (hub), request nonces (hub), the hub link and
the outbox marks (spoke), the sync log (both), and the published bundles' tokens (hub).

Triggers: the sync log is append-only; spokes are never deleted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("sync_events",)
NEVER_DELETED = ("spokes", "sync_outbox")
MESSAGE = "is append-only: the sync log is never changed or deleted"
NO_DELETE = "rows are never deleted"


def upgrade() -> None:
    op.add_column("recipe_publications", sa.Column("token", sa.Text(), nullable=True))
    op.create_table(
        "spokes",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('awaiting_enrollment', 'active', 'suspended', 'revoked')",
            name=op.f("ck_spokes_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_spokes_created_by_users")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_spokes")),
        sa.UniqueConstraint("key_id", name=op.f("uq_spokes_key_id")),
    )
    op.create_table(
        "enrollment_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("spoke_code", sa.String(length=12), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["spoke_code"], ["spokes.code"], name=op.f("fk_enrollment_codes_spoke_code_spokes")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_enrollment_codes_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrollment_codes_code_hash")),
    )
    op.create_index(
        op.f("ix_enrollment_codes_spoke_code"), "enrollment_codes", ["spoke_code"], unique=False
    )
    op.create_table(
        "sync_nonces",
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "nonce", name=op.f("pk_sync_nonces")),
    )
    op.create_index("ix_sync_nonces_seen_at", "sync_nonces", ["seen_at"], unique=False)
    op.create_table(
        "hub_link",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hub_url", sa.String(length=500), nullable=False),
        sa.Column("hub_code", sa.String(length=12), nullable=False),
        sa.Column("hub_key_id", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_hub_link_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_link")),
    )
    op.create_table(
        "sync_outbox",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("acked_seq", sa.Integer(), nullable=False),
        sa.Column("acked_hash", sa.String(length=64), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("refusal_code", sa.String(length=32), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'synced', 'refused')", name=op.f("ck_sync_outbox_known_state")
        ),
        sa.CheckConstraint(
            "acked_seq >= 0 AND acked_seq <= last_seq", name=op.f("ck_sync_outbox_acked_within")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_sync_outbox_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_sync_outbox")),
    )
    op.create_index("ix_sync_outbox_pending", "sync_outbox", ["pending"], unique=False)
    op.create_table(
        "sync_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("peer", sa.String(length=12), nullable=True),
        sa.Column("via", sa.String(length=12), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("item", sa.String(length=200), nullable=True),
        sa.Column("first_seq", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=True),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'duplicate', 'refused')",
            name=op.f("ck_sync_events_known_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_events")),
    )
    op.create_index("ix_sync_events_at", "sync_events", ["at"], unique=False)
    op.create_index("ix_sync_events_batch", "sync_events", ["batch_id"], unique=False)
    # Batches recorded before this revision wait in the outbox until the hub acknowledges them.
    op.execute(
        "INSERT INTO sync_outbox (batch_id, last_seq, acked_seq, acked_hash, pending, priority, "
        "state) SELECT id, last_seq, 0, NULL, true, false, 'pending' FROM batches"
    )
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_index("ix_sync_events_batch", table_name="sync_events")
    op.drop_index("ix_sync_events_at", table_name="sync_events")
    op.drop_table("sync_events")
    op.drop_index("ix_sync_outbox_pending", table_name="sync_outbox")
    op.drop_table("sync_outbox")
    op.drop_table("hub_link")
    op.drop_index("ix_sync_nonces_seen_at", table_name="sync_nonces")
    op.drop_table("sync_nonces")
    op.drop_index(op.f("ix_enrollment_codes_spoke_code"), table_name="enrollment_codes")
    op.drop_table("enrollment_codes")
    op.drop_table("spokes")
    # In place (SQLite 3.35+): a batch copy of the table would drop its append-only triggers.
    op.drop_column("recipe_publications", "token")


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
