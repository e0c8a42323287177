"""The hub's audit-head checkpoint file: signed heads appended outside the database.

A database superuser can delete the newest audit entries and put back an older signed head;
he cannot reach this file (it is the operating system's, mode 0600, in the instance folder,
and operators copy it off the machine, e.g. to WORM storage). Each line is one signed head
(:class:`mes.core.heads.SignedHead` as JSON), appended and fsynced after the transaction that
moved the head commits, so the file never names a head the database did not keep.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from mes.core.heads import SignedHead

_PENDING = "mes_checkpoint"  # session.info key: (path, head) to append once committed


def append_checkpoint(path: Path, head: SignedHead) -> None:
    """Append one signed head as a line, fsynced; the file is created 0600 if missing."""
    line = json.dumps(head.as_dict(), separators=(",", ":"), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one line at a time from every worker
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path: Path) -> list[tuple[int, Any]]:
    """Every line of the file as ``(line number, parsed JSON or None)``; empty if no file."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            lines.append((number, json.loads(raw)))
        except ValueError:
            lines.append((number, None))
    return lines


def checkpoint_after_commit(session: Session, path: Path, head: SignedHead) -> None:
    """Append ``head`` to the checkpoint file once the session's transaction commits."""
    session.info[_PENDING] = (path, head)


@event.listens_for(Session, "after_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    path, head = pending
    try:
        append_checkpoint(path, head)
    except OSError:  # the record is committed; verification then reports the lag
        logging.getLogger("mes.audit").exception("could not append to %s", path)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous_transaction: Any) -> None:
    with contextlib.suppress(KeyError):
        del session.info[_PENDING]
