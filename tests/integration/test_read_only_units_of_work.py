"""Units of work that only read (pages, the user and terminal of each request) take no write
lock on SQLite, are read-only in PostgreSQL, and can never commit."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from mes.store.models import User


def test_a_read_only_unit_of_work_reads_and_cannot_commit(make_uow):
    with make_uow() as uow:
        reader = uow.reader()
    with reader as uow:
        assert uow.session.execute(select(User)).scalars().all() == []
        with pytest.raises(RuntimeError, match="read-only unit of work cannot commit"):
            uow.commit()


def test_a_read_only_unit_of_work_neither_writes_nor_waits_for_a_writer(make_uow, database_url):
    with make_uow() as writer:
        writer.session.execute(text("INSERT INTO counters (name, value) VALUES ('x', 0)"))
        with writer.reader() as reader:
            # a writer holds its locks: a reader still reads at once, what was committed
            assert reader.session.execute(text("SELECT count(*) FROM counters")).scalar() == 0
            if database_url.startswith("postgresql"):
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    reader.session.execute(text("UPDATE counters SET value = value + 1"))
        writer.commit()
    with make_uow() as uow:
        assert uow.session.execute(text("SELECT value FROM counters")).scalar() == 0
