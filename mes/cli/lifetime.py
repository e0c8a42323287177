"""Server processes live no longer than the process that started them, and keep files private.

A gunicorn worker whose master was killed (``kill -9``), or a hub that ``mes demo`` started,
must not go on holding the port: a supervisor's restarted master could not bind it, and a
stopped demo would leave a hub serving. On Linux the kernel sends a process a chosen signal
when its parent dies (``prctl(PR_SET_PDEATHSIG)``); the request is made right after the fork,
and a parent that died before it took effect is caught by comparing the parent's process ID.

Every ``mes`` process also starts with umask 077, so that whatever it or a library writes (SQLite's
WAL, a log, an exported file) is its owner's alone (see :mod:`mes.store.files`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

from mes.store.files import PROCESS_UMASK

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def keep_files_private() -> None:
    """Make every file this process creates from now on readable by its owner only."""
    os.umask(PROCESS_UMASK)


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Have the kernel send ``signum`` to this process as soon as its parent dies (Linux).

    Called in the child right after the fork. If the parent is already gone (it died between
    the fork and this call, and the process was handed to another parent), the signal is sent
    now. Elsewhere than Linux nothing is asked: servers then rely on their own checks.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def dies_with_this_process(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child dies when this process dies."""
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent(parent, signum)

    return preexec
