"""After release (issue 17): the QC role, and which released batches still await results.

``user_roles``: the role "qc" (quality control, enters release test results) joins the roles a
user may hold. ``batch_reviews.after_release``: what a released batch still awaits — "event" (a
result out of specification not closed: the top of QA's queue) or "provisional" (results
pending, not yet certified final); a spoke keeps asking the hub for such a batch's review
entries, as it does for a batch not yet decided. Existing rows: NULL (nothing awaited).
``deviations.category`` widens from 16 to 32 characters ("result_after_release").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BEFORE = "role IN ('operator', 'supervisor', 'qa', 'author', 'admin')"
AFTER = "role IN ('operator', 'supervisor', 'qa', 'qc', 'author', 'admin')"


NO_DELETE = "rows are never deleted: GMP records stay for their retention period"


def _category(length: int, before: int) -> None:
    """The deviation category's width. SQLite copies the table, losing its trigger: made again."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("deviations") as batch_op:
            batch_op.alter_column(
                "category",
                type_=sa.String(length=length),
                existing_type=sa.String(length=before),
            )
        op.execute(
            "CREATE TRIGGER deviations_no_delete BEFORE DELETE ON deviations "
            f"BEGIN SELECT RAISE(ABORT, 'deviations {NO_DELETE}'); END"
        )
        return
    op.alter_column(
        "deviations",
        "category",
        type_=sa.String(length=length),
        existing_type=sa.String(length=before),
        existing_nullable=False,
    )


def _roles(sql: str) -> None:
    with op.batch_alter_table("user_roles") as batch_op:
        batch_op.drop_constraint(op.f("ck_user_roles_known_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_user_roles_known_role"), sql)


def upgrade() -> None:
    _roles(AFTER)
    _category(32, 16)
    with op.batch_alter_table("batch_reviews") as batch_op:
        batch_op.add_column(sa.Column("after_release", sa.String(length=12), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_batch_reviews_known_after_release"),
            "after_release IS NULL OR after_release IN ('event', 'provisional')",
        )


def downgrade() -> None:
    op.execute("DELETE FROM user_roles WHERE role = 'qc'")
    _roles(BEFORE)
    with op.batch_alter_table("batch_reviews") as batch_op:
        batch_op.drop_constraint(op.f("ck_batch_reviews_known_after_release"), type_="check")
        batch_op.drop_column("after_release")
    _category(16, 32)
