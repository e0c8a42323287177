"""Fixtures for the web tests: the real app (hub or spoke) on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from web_helpers import CheckedClient, client_of

from mes.store.models import AuditEntry, User


@pytest.fixture
def hub(make_app) -> Flask:
    """The hub's app on a fresh database."""
    return make_app("hub")


@pytest.fixture
def client(hub: Flask) -> CheckedClient:
    """A browser talking to the hub."""
    return client_of(hub)


@pytest.fixture
def audit_entries(make_uow) -> Callable[..., list[AuditEntry]]:
    """``audit_entries(action=..., record_id=...)``: entries as stored, oldest first."""

    def read(**where: Any) -> list[AuditEntry]:
        with make_uow() as uow:
            query = select(AuditEntry).order_by(AuditEntry.seq)
            for column, value in where.items():
                query = query.where(getattr(AuditEntry, column) == value)
            return list(uow.session.execute(query).scalars())

    return read


@pytest.fixture
def user_row(make_uow) -> Callable[[str], User | None]:
    """``user_row("alice")``: the user as stored now (roles loaded), or None."""

    def read(username: str) -> User | None:
        with make_uow() as uow:
            query = select(User).where(User.username == username)
            return uow.session.execute(query).scalar_one_or_none()

    return read
