"""The instance's files on disk are its owner's alone (21 CFR 11.10(d); EU GMP Annex 11 §7.1, §12).

An instance folder holds what no other account on the host may read or change: the site's
private keys, the secret that signs sessions, ``mes.toml`` (the database URL, with its password
when one is given), the SQLite database and its WAL (password hashes, patient identifiers,
DINs) and the issued PDF records. Every folder is created 0700 and every file 0600, whatever
the process's umask; every ``mes`` process also runs with umask 077, so that a file written by
a library (SQLite's WAL, a log) is private too. An instance opened with a folder or a secret
open to other users is refused, naming the file and the ``chmod`` that closes it: a copy of the
keys or the database taken by another account cannot be detected afterwards, only prevented.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mes.core.errors import InstanceNotPrivate

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
PROCESS_UMASK = 0o077
OPEN_TO_OTHERS = 0o077  # any permission bit for the group or for others


def make_private_folder(path: Path) -> Path:
    """Create ``path`` if needed and make it the owner's alone (0700).

    Missing parents are created 0700 too; a parent that exists is left as it is.
    """
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
        folder.chmod(PRIVATE_FOLDER)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FOLDER:
        path.chmod(PRIVATE_FOLDER)
    return path


def write_private(path: Path, data: bytes, *, exclusive: bool = False, sync: bool = False) -> None:
    """Write ``data`` to ``path`` readable and writable by the owner only (0600).

    ``exclusive`` refuses to replace an existing file (a key is never overwritten); ``sync``
    puts the bytes on disk before returning (a file about to be renamed into place).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(descriptor, PRIVATE_FILE)  # a file that existed keeps its mode otherwise
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(descriptor)


def sqlite_files(database_url: str) -> list[Path]:
    """The files of a SQLite database (the database, its WAL, shared memory and journal)."""
    if not database_url.startswith("sqlite:///"):
        return []  # PostgreSQL, or an in-memory database: nothing on this disk
    database = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
    return [
        database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")
    ]


def check_private_instance(instance_path: Path, database_url: str, secrets: dict[str, str]) -> None:
    """Refuse an instance whose folder or secrets other users may read, change or enter.

    ``secrets`` maps each file or folder (relative to the instance) to what it holds. The
    instance folder, ``keys/`` and ``records/`` and every file in ``keys/`` are checked with
    them, and so are the SQLite database's files wherever they are; what does not exist is
    skipped. The first one found open is named, with the ``chmod`` to run.
    """
    if os.name != "posix":
        return  # permission bits are POSIX's; another OS protects the folder its own way
    checked: list[tuple[Path, str]] = [(instance_path, "the whole instance")]
    checked += [(instance_path / name, what) for name, what in secrets.items()]
    keys = instance_path / "keys"
    if keys.is_dir():
        checked += [(key, "a key of this site") for key in sorted(keys.iterdir())]
    checked += [(path, "the database") for path in sqlite_files(database_url)]
    for path, what in checked:
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(status.st_mode)
        if mode & OPEN_TO_OTHERS:
            folder = stat.S_ISDIR(status.st_mode)
            private = PRIVATE_FOLDER if folder else PRIVATE_FILE
            raise InstanceNotPrivate(
                f"{path} ({what}) is open to other users of this computer (mode {mode:04o}), "
                "so the instance was not opened.",
                what_to_do=f"Run 'chmod {private:o} {path}' (or 'chmod -R go-rwx "
                f"{instance_path}' for the whole instance).",
            )
