"""The schema is created only by the migrations, and the migrated schema is exactly the models
(securedrop's "migrated schema equals the models" check), on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect

from mes.store.migrate import current_revision, head_revision
from mes.store.models import NAMING_CONVENTION, Base


def test_the_migrated_schema_has_no_difference_from_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_test_database_is_at_the_newest_migration(engine):
    assert current_revision(engine) == head_revision(engine)
    assert head_revision(engine) is not None


def test_every_model_table_exists_in_the_migrated_database(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert tables - set(Base.metadata.tables) == {"alembic_version"}


def test_the_comparison_notices_a_model_that_drifts_from_the_migrations(engine):
    # Guards the check above against passing vacuously: a new column and a changed type show.
    drifted = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    users = drifted.tables["users"]
    users.append_column(Column("badge_number", String(20), nullable=True))
    users.c.full_name.type = String(50)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, drifted)
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diff}
    assert kinds == {"add_column", "modify_type"}
