"""The index a control chart's series is read from holds the chart's columns (issue 16).

``parameter_results`` was indexed on (recipe code, parameter, recorded at): a chart of one
parameter over 50,000 batches read each row from the table and sorted them (≈180 ms at
PostgreSQL). The index becomes (recipe code, parameter, recorded at, number) — the chart's
order — and, at PostgreSQL, INCLUDEs the columns a chart reads (unit, site, batch, value,
recipe version): an index-only scan, already in order (≈17 ms). SQLite has no INCLUDE: there
the index gains the number only. Rows are untouched.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INCLUDE = ["unit", "site", "batch_id", "value", "recipe_version"]


def upgrade() -> None:
    op.drop_index("ix_parameter_results_parameter", table_name="parameter_results")
    op.create_index(
        "ix_parameter_results_series",
        "parameter_results",
        ["recipe_code", "parameter", "recorded_at", "number"],
        postgresql_include=INCLUDE,
    )


def downgrade() -> None:
    op.drop_index("ix_parameter_results_series", table_name="parameter_results")
    op.create_index(
        "ix_parameter_results_parameter",
        "parameter_results",
        ["recipe_code", "parameter", "recorded_at"],
    )
