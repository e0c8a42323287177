"""Foundation: users, roles, password history, training, terminals, the audit chain.

GMP tables are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("terminal", sa.String(length=200), nullable=True),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_username", sa.String(length=32), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('change', 'signature', 'security')", name=op.f("ck_audit_entries_known_kind")
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_entries_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entries_hash")),
        sa.UniqueConstraint("prev", name=op.f("uq_audit_entries_prev")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_actor_at", ["actor_username", "at"], unique=False)
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_entries_record", ["record_type", "record_id"], unique=False)

    op.create_table(
        "chain_heads",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=True),
        sa.CheckConstraint("last_seq >= 0", name=op.f("ck_chain_heads_seq_not_negative")),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_chain_heads")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("attested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_users_failed_attempts_not_negative")
        ),
        sa.CheckConstraint("username = lower(username)", name=op.f("ck_users_username_lower_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_history_user_id"), ["user_id"], unique=False)

    op.create_table(
        "terminals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["registered_by"], ["users.id"], name=op.f("fk_terminals_registered_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("site", "name", name="uq_terminals_site_name"),
    )
    op.create_table(
        "training_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("procedure", sa.String(length=200), nullable=False),
        sa.Column("qualified_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "expires_on IS NULL OR expires_on >= qualified_on",
            name=op.f("ck_training_records_expiry_after_qualification"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_training_records_recorded_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_training_records_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_records")),
    )
    with op.batch_alter_table("training_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_training_records_user_procedure", ["user_id", "procedure"], unique=False
        )

    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "role IN ('operator', 'supervisor', 'qa', 'author', 'admin')",
            name=op.f("ck_user_roles_known_role"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    create_append_only_triggers()


def downgrade() -> None:
    drop_append_only_triggers()
    op.drop_table("user_roles")
    with op.batch_alter_table("training_records", schema=None) as batch_op:
        batch_op.drop_index("ix_training_records_user_procedure")

    op.drop_table("training_records")
    op.drop_table("terminals")
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_history_user_id"))

    op.drop_table("password_history")
    op.drop_table("users")
    op.drop_table("chain_heads")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_record")
        batch_op.drop_index("ix_audit_entries_at")
        batch_op.drop_index("ix_audit_entries_actor_at")

    op.drop_table("audit_entries")


# Table -> what the database refuses. Append-only tables refuse UPDATE and DELETE; master tables
# (people, terminals) refuse DELETE only, because IDs are never deleted or reused.
APPEND_ONLY = ("audit_entries", "password_history", "training_records")
NO_DELETE = ("users", "terminals", "chain_heads")
MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
NO_DELETE_MESSAGE = "rows are never deleted: IDs are never reused; deactivate instead"


def _sqlite_trigger(table: str, event: str, when: str = "", message: str = MESSAGE) -> str:
    return (
        f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} {when}"
        f"BEGIN SELECT RAISE(ABORT, '{table} {message}'); END"
    )


def create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(_sqlite_trigger(table, "UPDATE"))
            op.execute(_sqlite_trigger(table, "DELETE"))
        for table in NO_DELETE:
            op.execute(_sqlite_trigger(table, "DELETE", message=NO_DELETE_MESSAGE))
        op.execute(
            _sqlite_trigger(
                "chain_heads", "UPDATE", "FOR EACH ROW WHEN NEW.last_seq <= OLD.last_seq "
            ).replace("_no_update", "_only_forward")
        )
        return
    op.execute(
        f"""
        CREATE FUNCTION mes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% {MESSAGE}', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION mes_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% {NO_DELETE_MESSAGE}', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION mes_chain_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.last_seq <= OLD.last_seq THEN
                RAISE EXCEPTION 'chain_heads only move forward'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
        )
    for table in NO_DELETE:
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_delete()"
        )
    for table in APPEND_ONLY + NO_DELETE:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )
    op.execute(
        "CREATE TRIGGER chain_heads_only_forward BEFORE UPDATE ON chain_heads "
        "FOR EACH ROW EXECUTE FUNCTION mes_chain_head_forward()"
    )


def drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        for table in NO_DELETE:
            op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute("DROP TRIGGER chain_heads_only_forward")
        return
    op.execute("DROP FUNCTION mes_refuse_change() CASCADE")
    op.execute("DROP FUNCTION mes_refuse_delete() CASCADE")
    op.execute("DROP FUNCTION mes_chain_head_forward() CASCADE")
