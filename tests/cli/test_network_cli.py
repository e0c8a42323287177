"""``mes network rebuild`` (and ``--check``) as real subprocesses, on SQLite and PostgreSQL.

That a rebuild equals what ingest and review maintained, and how ``--check`` words each
difference, is tested on batches received from a spoke (tests/integration/test_read_models.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from cli_helpers import assert_refused

from mes.settings import load_settings
from mes.store.engine import make_engine


def test_a_hub_rebuilds_its_read_models_and_checks_them(instance):
    assert instance.init().code == 0
    rebuilt = instance.run("network", "rebuild")
    assert (rebuilt.code, rebuilt.err) == (0, "")
    assert rebuilt.out == (
        "ok: rebuilt the read models of 0 batches: 0 batch summaries, 0 parameter results, "
        "0 batch milestones, 0 batch usages\n"
    )
    checked = instance.run("network", "rebuild", "--check")
    assert (checked.code, checked.out, checked.err) == (
        0, "ok: the read models are what the chains say.\n", "",
    )  # fmt: skip


def test_a_batch_whose_recipe_the_hub_does_not_hold_is_one_line(instance):
    assert instance.init().code == 0
    engine = make_engine(load_settings(instance.path, env={}).database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO batches (id, number, site, recipe_code, recipe_version, "
                "content_hash, chain_of_identity, status, created_at, created_by, last_seq, "
                "last_hash) VALUES ('b-1', 'SPK1-2026-0001', 'SPK1', 'X', 1, :hash, '{}', "
                "'created', '2026-11-21T09:00:00.000000Z', 'olivia', 1, :hash)"
            ),
            {"hash": "f" * 64},
        )
    engine.dispose()
    for args in (("network", "rebuild"), ("network", "rebuild", "--check")):
        assert_refused(
            instance.run(*args),
            "Batch b-1 was made with a recipe version this hub does not hold.",
        )


def test_a_spoke_has_no_network_read_models(instance):
    assert instance.init(role="spoke", site="SPK1").code == 0
    assert_refused(
        instance.run("network", "rebuild"),
        "The network's read models are kept at the hub, of the batches it received. "
        "Run it at the hub.",
    )


def test_upgrading_a_hub_past_the_read_models_fills_them(instance):
    from alembic import command

    from mes.store.migrate import alembic_config

    assert instance.init().code == 0
    engine = make_engine(load_settings(instance.path, env={}).database_url)
    command.downgrade(alembic_config(engine), "0010")
    engine.dispose()
    result = instance.run("db", "upgrade")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("Schema upgraded from 0010 to ")
    assert result.out.endswith(
        "ok: rebuilt the read models of 0 batches: 0 batch summaries, 0 parameter results, "
        "0 batch milestones, 0 batch usages\n"
    )
