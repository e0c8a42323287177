"""Engines for SQLite (embedded spoke default) and PostgreSQL (hub, larger spokes).

SQLite runs in WAL mode with ``synchronous=FULL`` and foreign keys on, and every transaction
that may write starts with ``BEGIN IMMEDIATE`` so that two writers never both read the same chain
head; a unit of work opened to read only starts a plain ``BEGIN`` and blocks no one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "mes_read_only"  # execution option of a connection that only reads


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine configured for GMP records on either database."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, start transactions (SQLAlchemy SQLite docs).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A unit of work that only reads takes no write lock (WAL readers never wait).
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_pre_ping=True, **kwargs)

    @event.listens_for(engine, "begin")
    def _read_only_begin(conn: Any) -> None:
        # A unit of work that only reads is read-only in the database too: a write is refused.
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that never expire loaded objects on commit (views read them after)."""
    return sessionmaker(engine, expire_on_commit=False)
