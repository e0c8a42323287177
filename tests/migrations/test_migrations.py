"""Every migration upgrades with data in the tables and downgrades back to the previous schema
with the data still there, on SQLite and on PostgreSQL (one ``migration_NNNN`` module each)."""

from __future__ import annotations

import pytest
from helpers import REVISIONS, module_of, run_downgrade, run_upgrade


def test_every_migration_has_an_upgrade_and_a_downgrade_tester():
    assert REVISIONS, "no migration found"
    for revision in REVISIONS:
        module = module_of(revision)  # tests/migrations/migration_NNNN.py
        assert module.UpgradeTester and module.DowngradeTester, revision


@pytest.mark.parametrize("revision", REVISIONS)
def test_the_upgrade_keeps_the_rows_and_makes_the_new_schema(database_at, revision):
    run_upgrade(database_at, revision)


@pytest.mark.parametrize("revision", REVISIONS)
def test_the_downgrade_restores_the_previous_schema_and_keeps_the_rows(database_at, revision):
    run_downgrade(database_at, revision)
