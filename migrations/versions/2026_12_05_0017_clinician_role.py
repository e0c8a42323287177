"""The clinician role: who checks identity at the bedside and records the infusion (issue 17).

``user_roles.role`` is checked against the known roles; ``clinician`` joins them. Rows are
untouched. The downgrade is refused while a user holds the role (their roles are not dropped
silently: revoke it first).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

BEFORE = "role IN ('operator', 'supervisor', 'qa', 'qc', 'author', 'admin')"
AFTER = "role IN ('operator', 'supervisor', 'qa', 'qc', 'author', 'admin', 'clinician')"


def _known_roles(sql: str) -> None:
    with op.batch_alter_table("user_roles") as batch_op:
        batch_op.drop_constraint(op.f("ck_user_roles_known_role"), type_="check")
        batch_op.create_check_constraint("known_role", sql)


def upgrade() -> None:
    _known_roles(AFTER)


def downgrade() -> None:
    held = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM user_roles WHERE role = 'clinician'"))
        .scalar_one()
    )
    if held:
        raise RuntimeError(
            f"{held} user(s) hold the clinician role: revoke it before downgrading below 0017."
        )
    _known_roles(BEFORE)
