"""The ``mes`` command as an administrator uses it: real processes, real databases."""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path

import sqlalchemy as sa
from support import PASSWORD

from mes.settings import load_settings
from mes.store.engine import make_engine


def _url(instance) -> str:
    return load_settings(instance.path, env={}).database_url


def add_olivia(instance) -> None:
    result = instance.run(
        "user",
        "add",
        "olivia",
        "--name",
        "Olivia Operator",
        "--role",
        "operator",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.code == 0, result.err


def behind_the_applications_back(instance, sqlite_trigger: str, statement: str) -> None:
    """Drop the append-only trigger, as a database administrator could, and run ``statement``."""
    engine = make_engine(_url(instance))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER audit_entries_{sqlite_trigger}")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entries_append_only ON audit_entries")
        conn.execute(sa.text(statement))
    engine.dispose()


def _no_traceback(result) -> None:
    assert "Traceback" not in result.out + result.err


def test_init_creates_an_instance_with_private_keys_and_a_verifiable_audit_trail(instance):
    result = instance.init()
    assert result.code == 0, result.err
    assert "Created hub instance HUB" in result.out
    key = instance.path / "keys" / "site_ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((instance.path / "secret_key").stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in result.out + result.err
    verify = instance.run("audit", "verify")
    assert verify.code == 0, verify.err
    assert verify.out.startswith(
        "ok: 3 entries; head 3 signed by HUB; anchored: checkpoint file seq 3 at "
    )


def test_init_twice_refuses_and_changes_nothing(instance):
    assert instance.init().code == 0
    key_before = (instance.path / "keys" / "site_ed25519.pem").read_bytes()
    again = instance.init()
    assert again.code == 1
    assert again.err.startswith("error: An instance already exists at")
    assert len(again.err.strip().splitlines()) == 1
    _no_traceback(again)
    assert (instance.path / "keys" / "site_ed25519.pem").read_bytes() == key_before
    assert instance.run("audit", "verify").out.startswith("ok: 3 entries; head 3 signed by HUB")


def test_init_with_a_weak_password_refuses_and_leaves_no_instance(instance):
    result = instance.init(password="short")
    assert result.code == 1
    assert "at least 12 characters" in result.err
    _no_traceback(result)
    assert not (instance.path / "mes.toml").exists()
    assert not (instance.path / "keys").exists()


def test_init_refuses_an_invalid_site_code(instance):
    result = instance.init(site="bad code!")
    assert result.code == 1
    assert "not a valid site code" in result.err
    _no_traceback(result)


def test_user_add_deactivate_unlock_and_their_refusals(instance):
    assert instance.init().code == 0
    add_olivia(instance)
    duplicate = instance.run(
        "user",
        "add",
        "OLIVIA",
        "--name",
        "Other Olivia",
        "--role",
        "operator",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert duplicate.code == 1
    assert "already taken" in duplicate.err
    unknown_role = instance.run(
        "user",
        "add",
        "bob",
        "--name",
        "Bob B",
        "--role",
        "wizard",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert unknown_role.code == 1
    assert "'wizard' is not a role" in unknown_role.err and "operator" in unknown_role.err
    weak = instance.run(
        "user",
        "add",
        "bob",
        "--name",
        "Bob B",
        "--role",
        "qa",
        "--password-stdin",
        stdin="bob-password-1\n",
    )
    assert weak.code == 1
    assert "must not contain the user ID" in weak.err
    not_locked = instance.run("user", "unlock", "olivia")
    assert not_locked.code == 1 and "is not locked" in not_locked.err
    no_reason = instance.run("user", "deactivate", "olivia")
    assert no_reason.code != 0
    _no_traceback(no_reason)
    gone = instance.run("user", "deactivate", "olivia", "--reason", "Left the company")
    assert gone.code == 0, gone.err
    reuse = instance.run(
        "user",
        "add",
        "olivia",
        "--name",
        "New Olivia",
        "--role",
        "qa",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert reuse.code == 1 and "never reused" in reuse.err
    listing = instance.run("user", "list")
    assert "olivia" in listing.out and "deactivated" in listing.out
    for result in (duplicate, unknown_role, weak, not_locked, reuse):
        _no_traceback(result)
        assert len(result.err.strip().splitlines()) == 1
    assert instance.run("audit", "verify").out.startswith("ok: 5 entries; head 5 signed by HUB")


def test_a_locked_user_is_unlocked_from_the_command_line(instance):
    from datetime import UTC, datetime

    from mes.core.errors import AccountLocked, AuthenticationFailed
    from mes.services.context import Context
    from mes.services.runtime import open_runtime
    from mes.services.users import authenticate

    assert instance.init().code == 0
    runtime = open_runtime(load_settings(instance.path, env={}))
    ctx = Context(at=datetime.now(UTC), user_id=None, terminal="test")
    for _ in range(5):
        with runtime.uow() as uow, contextlib.suppress(AuthenticationFailed, AccountLocked):
            authenticate(uow, ctx, "ada", "wrong-password-here")
    runtime.close()
    listing = instance.run("user", "list")
    assert "locked" in listing.out
    unlocked = instance.run("user", "unlock", "ada", "--reason", "Identity confirmed in person")
    assert unlocked.code == 0, unlocked.err
    assert "locked" not in instance.run("user", "list").out.split("active", 1)[1]


def test_audit_verify_names_the_entry_edited_behind_the_applications_back(instance):
    assert instance.init().code == 0
    add_olivia(instance)
    behind_the_applications_back(
        instance, "no_update", "UPDATE audit_entries SET actor_name = 'Mallory' WHERE seq = 2"
    )
    result = instance.run("audit", "verify")
    assert result.code == 1
    assert (
        result.err.strip()
        == "FAILED: audit entry 2: its content does not match its hash: it was edited"
    )


def test_audit_verify_names_a_deleted_entry(instance):
    assert instance.init().code == 0
    add_olivia(instance)
    behind_the_applications_back(instance, "no_delete", "DELETE FROM audit_entries WHERE seq = 2")
    result = instance.run("audit", "verify")
    assert result.code == 1
    assert result.err.startswith("FAILED: audit entry 2: is missing")


def test_the_database_refuses_to_edit_the_audit_trail(instance):
    assert instance.init().code == 0
    engine = make_engine(_url(instance))
    for statement in (
        "UPDATE audit_entries SET reason = 'x' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 1",
    ):
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as err:
            assert "append-only" in str(err)
        else:
            raise AssertionError(f"the database accepted: {statement}")
    engine.dispose()
    assert instance.run("audit", "verify").out.startswith("ok: 3 entries; head 3 signed by HUB")


def test_commands_on_a_missing_instance_say_what_to_do(tmp_path):
    from cli_helpers import run_bare

    result = run_bare("--instance", str(tmp_path / "nowhere"), "user", "list")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: No instance at")
    assert "mes init" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_is_idempotent(instance):
    assert instance.init().code == 0
    result = instance.run("db", "upgrade")
    assert result.code == 0
    migrations = sorted(
        (Path(__file__).resolve().parents[2] / "migrations" / "versions").glob("*.py")
    )
    head = migrations[-1].name.split("_")[3]  # 2026_11_22_0002_master_recipes.py → 0002
    assert result.out == f"Schema already at {head}.\n"
