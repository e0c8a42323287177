"""A throwaway PostgreSQL cluster for a test run where no server answers.

``start()`` (called once, by the controlling pytest process) makes a cluster with ``initdb`` in a
new temporary folder, trust authentication, listening on a free port of 127.0.0.1 only, and
creates the database ``test``. The cluster is owned by a small watcher process (this file run as
a script): it starts ``postgres`` as its child and then waits for the end of its standard input,
which only the pytest process holds. However pytest ends — normally, by Ctrl+C, or killed with
SIGKILL — the pipe closes; the watcher then stops the server (fast shutdown) and deletes the
folder. The watcher runs in a session of its own, so a Ctrl+C at the terminal does not cut the
clean-up short.

``initdb`` is looked for under ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package;
the newest version), then on ``PATH``. PostgreSQL refuses to run as root: a root test run starts
it as the ``postgres`` account that the package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

READY = "ready"  # the watcher's line on its standard output once the server accepts connections
START_SECONDS = 60.0


def binaries() -> Path:
    """The folder of ``initdb`` and ``postgres``: Debian's newest, or the one on ``PATH``."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        "No PostgreSQL server answers and initdb is not installed: install Debian's postgresql "
        "package (bash .ci/run does), or point MES_TEST_PG at a server."
    )


def _server_account() -> str | None:
    """The account to run PostgreSQL as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "PostgreSQL does not run as root and there is no 'postgres' account to run it as "
            "(Debian's postgresql package creates it)."
        ) from None
    return "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """A running throwaway cluster and the pipe that keeps it alive."""

    folder: Path
    port: int
    watcher: subprocess.Popen[str]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def stop(self, seconds: float = 30.0) -> None:
        """Close the lifeline and wait until the watcher has stopped the server and removed it."""
        if self.watcher.stdin is not None:
            with contextlib.suppress(OSError):
                self.watcher.stdin.close()
        try:
            self.watcher.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.watcher.kill()
            self.watcher.wait()


def start() -> Cluster:
    """Create and start a cluster; it lives until ``Cluster.stop()`` or the end of this process."""
    folder = Path(tempfile.mkdtemp(prefix="mes-test-pg-"))
    account = _server_account()
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    watcher = subprocess.Popen(
        [sys.executable, __file__, str(folder), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cluster = Cluster(folder, port, watcher)
    assert watcher.stdout is not None
    line = watcher.stdout.readline().strip()  # the watcher answers once, ready or not
    if line != READY:
        cluster.stop()
        raise RuntimeError(f"The throwaway PostgreSQL cluster did not start: {line}")
    return cluster


# --- the watcher (this file run as a script: DATADIR-FOLDER PORT) ---------------------------------


def _run(command: list[str], account: str | None, log: Path) -> None:
    with log.open("ab") as output:
        subprocess.run(command, user=account, stdout=output, stderr=subprocess.STDOUT, check=True)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _create_test_database(bin_dir: Path, port: int, account: str | None, log: Path) -> None:
    """``CREATE DATABASE test`` once the server accepts it (it refuses while starting up)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        with log.open("ab") as output:
            done = subprocess.run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                 "test"],
                user=account, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("createdb test failed")
        time.sleep(0.2)


def _watch(folder: Path, port: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's mes
    from mes.cli.lifetime import dies_with_this_process

    account = _server_account()
    bin_dir = binaries()
    data, log = folder / "data", folder / "postgres.log"
    server: subprocess.Popen[bytes] | None = None
    try:
        try:
            _run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
                account, log,
            )  # fmt: skip
            with log.open("ab") as output:
                server = subprocess.Popen(
                    [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                     "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                     "-c", "max_connections=300", "-c", "fsync=off",
                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    user=account, stdout=output, stderr=subprocess.STDOUT,
                    preexec_fn=dies_with_this_process(signal.SIGQUIT),  # if the watcher is killed
                )  # fmt: skip
            deadline = time.monotonic() + START_SECONDS
            while not _accepts(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start")
                time.sleep(0.1)
            _create_test_database(bin_dir, port, account, log)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            print(f"{error}: {tail!r}", flush=True)
            return
        print(READY, flush=True)
        sys.stdin.read()  # until the test run ends, however it ends
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the end of standard input stops us
    _watch(Path(sys.argv[1]), int(sys.argv[2]))
