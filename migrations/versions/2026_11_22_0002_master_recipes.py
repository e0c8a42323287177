"""Master recipes: versions with their lifecycle (hub), publications (hub), installed bundles (spoke).

Triggers: recipe versions are never deleted and their content never changes once out of
draft; publications and installed recipes are append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = ("recipe_publications", "installed_recipes")
MESSAGE = "is append-only: GMP records are never changed or deleted; record a correction instead"
CONTENT = ("recipe_code", "version", "content_hash", "compiled", "source_text", "source_name")
LOCKED_MESSAGE = "recipe_versions content is immutable once out of draft: make a new version"


def upgrade() -> None:
    op.create_table(
        "recipe_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("modality", sa.String(length=40), nullable=False),
        sa.Column("change_reason", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("compiled", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("authored_by", sa.String(length=36), nullable=True),
        sa.Column("reviewed_by", sa.String(length=36), nullable=True),
        sa.Column("approved_by", sa.String(length=36), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'in_review', 'approved', 'effective', 'superseded', 'retired')",
            name=op.f("ck_recipe_versions_known_status"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_recipe_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["users.id"], name=op.f("fk_recipe_versions_approved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["authored_by"], ["users.id"], name=op.f("fk_recipe_versions_authored_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_recipe_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_recipe_versions_reviewed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipe_versions")),
        sa.UniqueConstraint("recipe_code", "version", name="uq_recipe_versions_code_version"),
    )
    op.create_index("ix_recipe_versions_status", "recipe_versions", ["status"], unique=False)
    op.create_table(
        "recipe_publications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("bundle_hash", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["published_by"], ["users.id"], name=op.f("fk_recipe_publications_published_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["recipe_versions.id"],
            name=op.f("fk_recipe_publications_version_id_recipe_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipe_publications")),
    )
    op.create_index(
        op.f("ix_recipe_publications_version_id"),
        "recipe_publications",
        ["version_id"],
        unique=False,
    )
    op.create_table(
        "installed_recipes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipe_code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("compiled", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("bundle_hash", sa.String(length=64), nullable=False),
        sa.Column("hub_key_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.String(length=27), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("installed_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["installed_by"], ["users.id"], name=op.f("fk_installed_recipes_installed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installed_recipes")),
        sa.UniqueConstraint("bundle_hash", name=op.f("uq_installed_recipes_bundle_hash")),
        sa.UniqueConstraint("recipe_code", "version", name="uq_installed_recipes_code_version"),
    )
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_table("installed_recipes")
    op.drop_index(op.f("ix_recipe_publications_version_id"), table_name="recipe_publications")
    op.drop_table("recipe_publications")
    op.drop_index("ix_recipe_versions_status", table_name="recipe_versions")
    op.drop_table("recipe_versions")


def create_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
                )
        op.execute(
            "CREATE TRIGGER recipe_versions_no_delete BEFORE DELETE ON recipe_versions "
            "BEGIN SELECT RAISE(ABORT, 'recipe_versions rows are never deleted: retire instead'); END"
        )
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT)
        op.execute(
            "CREATE TRIGGER recipe_versions_content_locked BEFORE UPDATE ON recipe_versions "
            f"FOR EACH ROW WHEN OLD.status <> 'draft' AND ({changed}) "
            f"BEGIN SELECT RAISE(ABORT, '{LOCKED_MESSAGE}'); END"
        )
        return
    # PostgreSQL: mes_refuse_change() and mes_refuse_delete() come from migration 0001.
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mes_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
        )
    op.execute(
        "CREATE TRIGGER recipe_versions_no_delete BEFORE DELETE ON recipe_versions "
        "FOR EACH ROW EXECUTE FUNCTION mes_refuse_delete()"
    )
    op.execute(
        "CREATE TRIGGER recipe_versions_no_truncate BEFORE TRUNCATE ON recipe_versions "
        "FOR EACH STATEMENT EXECUTE FUNCTION mes_refuse_change()"
    )
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CONTENT)
    op.execute(
        f"""
        CREATE FUNCTION mes_recipe_content_locked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status <> 'draft' AND ({changed}) THEN
                RAISE EXCEPTION '{LOCKED_MESSAGE}'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER recipe_versions_content_locked BEFORE UPDATE ON recipe_versions "
        "FOR EACH ROW EXECUTE FUNCTION mes_recipe_content_locked()"
    )


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute("DROP TRIGGER recipe_versions_no_delete")
        op.execute("DROP TRIGGER recipe_versions_content_locked")
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    op.execute("DROP TRIGGER recipe_versions_no_delete ON recipe_versions")
    op.execute("DROP TRIGGER recipe_versions_no_truncate ON recipe_versions")
    op.execute("DROP FUNCTION mes_recipe_content_locked() CASCADE")
