"""Badge + PIN: a second way to identify and authenticate (21 CFR 11.200(a)(1), 11.300).

Users get a PIN (argon2id hash, when it was set) and the PINs' history; badges hold the SHA-256
of each enrolled badge code with a short hint, who enrolled it when, and its revocation; a web
session keeps how its first signing identified the user.

Triggers: the PIN history is append-only; badges are never deleted (a lost one is revoked).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
NO_DELETE_MESSAGE = "rows are never deleted: IDs are never reused; deactivate instead"
ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.add_column("users", sa.Column("pin_hash", sa.String(length=200), nullable=True))
    op.add_column("users", sa.Column("pin_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("web_sessions", sa.Column("signed_with", sa.String(length=10), nullable=True))
    with op.batch_alter_table("web_sessions") as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_web_sessions_known_signed_with"),
            "signed_with IS NULL OR signed_with IN ('password', 'badge_pin')",
        )
    op.create_table(
        "pin_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pin_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_history")),
    )
    op.create_index(op.f("ix_pin_history_user_id"), "pin_history", ["user_id"])
    op.create_table(
        "badges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_by", sa.String(length=36), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "revoked_at IS NULL OR revoked_at >= enrolled_at",
            name=op.f("ck_badges_revoked_after_enrolled"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_badges_user_id_users")),
        sa.ForeignKeyConstraint(
            ["enrolled_by"], ["users.id"], name=op.f("fk_badges_enrolled_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badges")),
    )
    for name, column in (
        ("uq_badges_active_code", "code_hash"),
        ("uq_badges_active_user", "user_id"),
    ):
        op.create_index(
            name, "badges", [column], unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE
        )
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER pin_history_no_{event.lower()} BEFORE {event} ON pin_history "
                f"BEGIN SELECT RAISE(ABORT, 'pin_history {MESSAGE}'); END"
            )
        op.execute(
            "CREATE TRIGGER badges_no_delete BEFORE DELETE ON badges "
            f"BEGIN SELECT RAISE(ABORT, 'badges {NO_DELETE_MESSAGE}'); END"
        )
        return
    op.execute(
        "CREATE TRIGGER pin_history_append_only BEFORE UPDATE OR DELETE ON pin_history "
        "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER badges_no_delete BEFORE DELETE ON badges "
        "FOR EACH ROW EXECUTE FUNCTION mes_refuse_delete()"
    )
    for table in ("pin_history", "badges"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER pin_history_no_update")
        op.execute("DROP TRIGGER pin_history_no_delete")
        op.execute("DROP TRIGGER badges_no_delete")
    else:
        op.execute("DROP TRIGGER pin_history_append_only ON pin_history")
        op.execute("DROP TRIGGER badges_no_delete ON badges")
        for table in ("pin_history", "badges"):
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    op.drop_index("uq_badges_active_user", table_name="badges")
    op.drop_index("uq_badges_active_code", table_name="badges")
    op.drop_table("badges")
    op.drop_index(op.f("ix_pin_history_user_id"), table_name="pin_history")
    op.drop_table("pin_history")
    with op.batch_alter_table("web_sessions") as batch_op:
        batch_op.drop_constraint(op.f("ck_web_sessions_known_signed_with"), type_="check")
    op.drop_column("web_sessions", "signed_with")
    # In place (SQLite 3.35+): a batch copy of users would drop its no-delete trigger.
    op.drop_column("users", "pin_changed_at")
    op.drop_column("users", "pin_hash")
