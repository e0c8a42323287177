"""The schema is created only by the migrations, and the migrated schema is exactly the models
(securedrop's "migrated schema equals the models" check), on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Column, MetaData, String, inspect

from mes.core.materials import LotStatus
from mes.core.sync import SyncOutcome
from mes.store.migrate import current_revision, head_revision
from mes.store.models import NAMING_CONVENTION, Base, known


def test_the_migrated_schema_has_no_difference_from_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_every_check_constraint_of_the_models_is_the_migrated_one(engine):
    # Alembic's comparison does not look at CHECK constraints; those built from the core's enums
    # (mes.store.models.base.known) must list what the migrations wrote, in the same order.
    inspector = inspect(engine)
    checked = 0
    for table in Base.metadata.sorted_tables:
        migrated = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table.name)}
        for constraint in table.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            model_sql = str(constraint.sqltext)
            assert constraint.name in migrated, constraint.name
            if engine.dialect.name == "sqlite":  # SQLite keeps the text as written
                assert migrated[constraint.name] == model_sql
            literals = re.findall(r"'([^']*)'", migrated[constraint.name])
            assert literals == re.findall(r"'([^']*)'", model_sql), constraint.name
            checked += 1
    assert checked >= 20


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


def test_a_check_constraint_lists_the_enums_values_in_their_order():
    check = known("status", LotStatus)
    assert str(check.sqltext) == "status IN ('quarantine', 'released', 'rejected')"
    assert check.name == "known_status"
    nullable = known("decision", SyncOutcome, nullable=True)
    assert str(nullable.sqltext) == (
        "decision IS NULL OR decision IN ('accepted', 'duplicate', 'refused')"
    )
