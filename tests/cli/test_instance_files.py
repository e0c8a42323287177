"""An instance is its owner's alone: made private by ``mes init``, refused when opened to others.

The instance holds the site's private keys, the session secret, ``mes.toml`` (the database URL
with its password) and the SQLite database (password hashes, patient identifiers, DINs): no
other account on the host may read or change them (issue 13, finding 6).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from cli_helpers import assert_refused

PRIVATE = {"folder": "0700", "file": "0600"}


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run ``mes`` from a shell with this umask (its children inherit it)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def refused_in_one_line(result) -> str:
    """The refusal's one line (exit 1, nothing on stdout, no traceback)."""
    assert (result.code, result.out) == (1, ""), result
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    return result.err.strip()


def modes(folder: Path) -> dict[str, str]:
    """Every folder and file under ``folder`` (itself included): its permission bits, in octal."""
    return {
        str(path.relative_to(folder)): f"{stat.S_IMODE(path.stat().st_mode):04o}"
        for path in (folder, *folder.rglob("*"))
    }


def expected(folder: Path, found: dict[str, str]) -> dict[str, str]:
    return {name: PRIVATE["folder" if (folder / name).is_dir() else "file"] for name in found}


def test_mes_init_makes_the_folder_0700_and_every_file_0600_the_sqlite_wal_included(instance):
    with umask(0o022):  # a usual shell: files 0644, folders 0755 unless mes sees to it
        made = instance.init()
        assert made.code == 0, made.err
        database = instance.path / "mes.sqlite3"
        held = None
        if instance.database_url is None:
            # A reader holding the database open keeps its WAL and shared memory on disk.
            held = sqlite3.connect(database)
            held.execute("SELECT count(*) FROM users").fetchone()
        try:
            added = instance.run(
                *("user", "add", "olivia", "--name", "Olivia Operator", "--role", "operator"),
                "--password-stdin",
                stdin="correct-Horse-7-battery\n",
            )
            assert added.code == 0, added.err
            found = modes(instance.path)
        finally:
            if held is not None:
                held.close()
    if instance.database_url is None:
        assert {"mes.sqlite3", "mes.sqlite3-wal", "mes.sqlite3-shm"} <= set(found)
    assert {"mes.toml", "secret_key", "keys", "keys/site_ed25519.pem"} <= set(found)
    assert found == expected(instance.path, found)


def test_a_command_or_server_refuses_an_instance_whose_secrets_others_may_read(instance):
    assert instance.init().code == 0
    (instance.path / "records").mkdir(mode=0o700)
    opened = [
        ("mes.toml", 0o644, "600"),
        ("secret_key", 0o604, "600"),
        ("keys/site_ed25519.pem", 0o640, "600"),
        ("keys/document_signing_p256.pem", 0o660, "600"),
        ("keys", 0o750, "700"),
        ("records", 0o755, "700"),
        (".", 0o755, "700"),
    ]
    if instance.database_url is None:
        opened.append(("mes.sqlite3", 0o644, "600"))
    for name, mode, fix in opened:
        path = (instance.path / name).resolve()
        before = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode)
        try:
            for command in (("audit", "verify"), ("serve", "--port", "0")):
                result = instance.run(*command)
                line = refused_in_one_line(result)
                assert f"{path} (" in line and f"(mode {mode:04o})" in line, line
                assert f"Run 'chmod {fix} {path}'" in line, line
                assert "so the instance was not opened" in line, line
        finally:
            path.chmod(before)
    assert instance.run("audit", "verify").code == 0


def test_the_hub_under_gunicorn_refuses_a_configuration_others_may_read(instance):
    assert instance.init().code == 0
    folder = instance.path.resolve()
    config = folder / "mes.toml"
    config.chmod(0o644)
    assert_refused(
        instance.run("serve", "--port", "0", "--workers", "2"),
        f"{config} (the configuration, with the database URL) is open to other users of this "
        f"computer (mode 0644), so the instance was not opened. Run 'chmod 600 {config}' "
        f"(or 'chmod -R go-rwx {folder}' for the whole instance).",
    )
