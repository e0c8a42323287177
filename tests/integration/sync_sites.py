"""A hub and a spoke on two separate real databases of one kind, for the sync service tests.

conftest's ``make_uow`` gives a test one fresh database (SQLite or PostgreSQL); a hub and its
spoke cannot share one (each keeps its own ``batches``, ``batch_entries`` …). :func:`twin_database`
makes a second fresh, migrated database of the same kind from conftest's per-worker templates
(a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for PostgreSQL), and :class:`Network`
hands out units of work (and runtimes) of the hub on the first and of spoke SPK1 on the second,
each with its own key. Plain functions, not fixtures: the test module owns its fixtures.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from batch_helpers import TEST_RECIPE, Spoke
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from support import NOW, PASSWORD, pg_database, user_ctx, worker

from mes.core.keys import SiteKey, SitePublicKey
from mes.core.lifecycle import Step
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.services import recipes, spokes
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.runtime import Runtime
from mes.services.users import add_user
from mes.settings import Settings
from mes.store.engine import session_factory
from mes.store.models import BatchEntry
from mes.store.uow import UnitOfWork

HUB, SPOKE = "HUB", "SPK1"
CLI = Context.command_line(NOW, "tester", "testhost")
HUB_PEOPLE = {"aaron": ["author"], "sam": ["supervisor"], "quinn": ["qa"]}
_counter = itertools.count()


@contextmanager
def twin_database(request: pytest.FixtureRequest, url: str, folder: Path) -> Iterator[str]:
    """Another fresh, migrated database of the same kind as ``url`` (dropped afterwards)."""
    if url.startswith("sqlite"):
        target = folder / "spoke.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    with pg_database(f"mes_spoke_{worker()}_{os.getpid()}_{next(_counter)}", template) as url:
        yield url


@dataclass
class Network:
    """The hub (code HUB) on one database and spoke SPK1 on another, each with its own key."""

    hub_engine: Engine
    spoke_engine: Engine
    hub_key: SiteKey
    spoke_key: SiteKey = field(default_factory=SiteKey.generate)
    folder: Path = Path()
    hub_ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub_sessions: sessionmaker[Session] = session_factory(self.hub_engine)
        self.spoke_sessions: sessionmaker[Session] = session_factory(self.spoke_engine)

    # -- the two sites ----------------------------------------------------------------------

    @property
    def hub_site(self) -> Site:
        return Site(
            code=HUB, name="Test hub", role="hub", time_zone="Europe/London", key=self.hub_key
        )

    def spoke_site(self, hub_key: SitePublicKey | None = None) -> Site:
        return Site(
            code=SPOKE,
            name="Test spoke",
            role="spoke",
            time_zone="Europe/London",
            key=self.spoke_key,
            hub_key=hub_key or self.hub_key.public,
        )

    def hub(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work at the hub."""
        return UnitOfWork(self.hub_sessions, self.hub_site, read_only=read_only)

    def spoke_uow(
        self,
        role: str = "spoke",
        expiry_days: int | None = None,
        hub_key: SitePublicKey | None = None,
    ) -> UnitOfWork:
        """A unit of work at the spoke (the ``make_uow`` the ``Spoke`` helper calls)."""
        assert role == "spoke", "the spoke's database holds the spoke only"
        site = self.spoke_site(hub_key)
        if expiry_days is not None:
            site = replace(site, password_policy=PasswordPolicy(expiry_days=expiry_days))
        return UnitOfWork(self.spoke_sessions, site)

    def spoke(self) -> Spoke:
        """The ``Spoke`` helper on the spoke's database: people, terminal, BATCH-TEST, masters.

        Its recipe bundle is signed with the hub's own key (the key the spoke pins).
        """
        return Spoke(self.spoke_uow, self.hub_key).set_up()

    def runtime(self, role: str) -> Runtime:
        """The hub's or the spoke's runtime (for the transfer files)."""
        engine = self.hub_engine if role == "hub" else self.spoke_engine
        site = self.hub_site if role == "hub" else self.spoke_site()
        settings = Settings(
            instance_path=self.folder / role,
            role=role,
            site_code=site.code,
            site_name=site.name,
            time_zone=site.time_zone,
            database_url=str(engine.url),
            secret_key="sync-tests-" + role,
        )
        sessions = self.hub_sessions if role == "hub" else self.spoke_sessions
        return Runtime(settings, engine, sessions, site)

    # -- the hub's side of the set-up ---------------------------------------------------------

    def add_hub_people(self) -> dict[str, str]:
        """Author Aaron, supervisor Sam and QA Quinn at the hub, each attested."""
        for username, roles in HUB_PEOPLE.items():
            with self.hub() as uow:
                self.hub_ids[username] = add_user(
                    uow, CLI, username=username, full_name=f"{username.title()} Hub",
                    roles=roles, password=PASSWORD,
                )  # fmt: skip
            with self.hub() as uow:
                acknowledge_accountability(
                    uow,
                    user_ctx(self.hub_ids[username]),
                    Credentials(PASSWORD, username),
                    first_signing_in_session=True,
                )
        return self.hub_ids

    def approve(self, text: str = TEST_RECIPE) -> str:
        """Import a recipe at the hub and take it to effective, as its people would; its ID."""
        if not self.hub_ids:
            self.add_hub_people()
        with self.hub() as uow:
            version_id = recipes.import_recipe(
                uow, user_ctx(self.hub_ids["aaron"]), text, "batch-test.yaml"
            ).id
        signers = {
            Step.SUBMIT: "aaron",
            Step.REVIEW: "sam",
            Step.APPROVE: "quinn",
            Step.MAKE_EFFECTIVE: "quinn",
        }
        for step, who in signers.items():
            with self.hub() as uow:
                recipes.sign_step(
                    uow,
                    user_ctx(self.hub_ids[who]),
                    version_id,
                    step,
                    Credentials(PASSWORD, who),
                    first_signing_in_session=True,
                    effective_from=NOW.date(),
                )
        return version_id

    def publish(self, version_id: str, sites: tuple[str, ...] = (SPOKE,)) -> str:
        """Publish the effective version for ``sites``; the bundle's JWS."""
        with self.hub() as uow:
            token, _ = recipes.publish(uow, CLI, version_id, sites)
        return token

    def enroll(self, code: str = SPOKE, key: SiteKey | None = None) -> spokes.Enrollment:
        """Add the spoke at the hub and enroll it with its key (SPK1: the spoke's own key)."""
        with self.hub() as uow:
            ticket = spokes.add_spoke(uow, CLI, code, f"Spoke {code}", "Europe/London")
        with self.hub() as uow:
            return spokes.enroll(
                uow, NOW, code, ticket.code, (key or self.spoke_key).public.pem().decode()
            )

    def connected(self) -> Spoke:
        """The whole set-up: BATCH-TEST effective and published to SPK1, SPK1 enrolled, and the
        spoke ready to run batches."""
        self.publish(self.approve())
        self.enroll()
        return self.spoke()


@pytest.fixture
def net(request, database_url, engine, site_key, tmp_path) -> Iterator[Network]:
    """The hub on the test's database, spoke SPK1 on a second database of the same kind.

    A test module uses it by importing it (``from sync_sites import net``).
    """
    from mes.store.engine import make_engine

    with twin_database(request, database_url, tmp_path) as spoke_url:
        spoke_engine = make_engine(spoke_url)
        try:
            yield Network(engine, spoke_engine, site_key, folder=tmp_path)
        finally:
            spoke_engine.dispose()


def recipe_file(folder: Path) -> Path:
    """BATCH-TEST written to ``folder`` (the recipe driver runs batches from a file)."""
    path = folder / "batch-test.yaml"
    path.write_text(TEST_RECIPE, encoding="utf-8")
    return path


def entry_rows(sessions: sessionmaker[Session]) -> list[tuple]:
    """Every stored ledger entry of a database (batch, seq, hash, signature), in order."""
    with sessions() as session:
        return [
            tuple(r)
            for r in session.execute(
                select(
                    BatchEntry.batch_id, BatchEntry.seq, BatchEntry.hash, BatchEntry.signature
                ).order_by(BatchEntry.batch_id, BatchEntry.seq)
            ).all()
        ]
