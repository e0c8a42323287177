"""Unit of work: one service call is one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from mes.core.site import Site
from mes.store.engine import READ_ONLY


class UnitOfWork:
    """A database session for one service call, plus the site it runs as.

    Use as a context manager; leaving the block without :meth:`commit` rolls everything back,
    so a refused request never leaves a half-written record.
    """

    def __init__(
        self, sessions: sessionmaker[Session], site: Site, *, read_only: bool = False
    ) -> None:
        self._sessions = sessions
        self.site = site
        self.read_only = read_only
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The open session (only inside the ``with`` block)."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._sessions()
        if self.read_only:
            self._session.connection(execution_options={READ_ONLY: True})
        return self

    def reader(self) -> UnitOfWork:
        """A separate, short unit of work that only reads (e.g. before this one takes locks)."""
        return UnitOfWork(self._sessions, self.site, read_only=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            # Detach what was read so pages can still show it, then discard anything uncommitted.
            self._session.expunge_all()
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None

    def add(self, row: object) -> None:
        """Keep a new row (written at the next flush or commit)."""
        self.session.add(row)

    def flush(self) -> None:
        """Write what was added or changed so far (still uncommitted), e.g. so a later row can refer to it."""
        self.session.flush()

    def rollback(self) -> None:
        """Discard everything done since the last commit (the unit of work stays open)."""
        self.session.rollback()

    def commit(self) -> None:
        """Make everything done in this unit of work durable, at once."""
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.session.commit()
