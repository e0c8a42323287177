"""``mes serve``: serve the instance's web application (and, at a spoke, sync in the background)."""

from __future__ import annotations

import signal
import socket
from typing import Any

import click

from mes.cli.common import CliState
from mes.cli.lifetime import die_with_parent
from mes.store.files import PROCESS_UMASK


def free_port(host: str, preferred: int) -> int:
    """``preferred`` if it is free, otherwise any free port (0 always picks a free one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        return probe.getsockname()[1]


def serve_app(state: CliState, host: str, port: int, workers: int = 1) -> None:
    """Serve the app: waitress (one process, threads), or gunicorn with several worker processes.

    A spoke with ``sync.interval_seconds`` > 0 that enrolled with a hub also runs the sync loop
    in the background of this process.
    """
    if workers > 1:
        _gunicorn(state, host, port, workers)
        return
    import waitress

    from mes.app import create_app
    from mes.sync.client import start_background

    runtime = state.runtime()
    app = create_app(runtime=runtime)
    site = app.extensions["mes"].site
    click.echo(f"Serving {site.role} {site.code} on http://{host}:{port}/ (Ctrl+C to stop)")
    stop = start_background(runtime)
    try:
        waitress.serve(app, host=host, port=port, threads=8, ident="mes")
    finally:
        stop.set()


def _worker_dies_with_master(_arbiter: Any, worker: Any) -> None:
    """Gunicorn's ``post_fork`` hook: a worker is killed as soon as its master dies.

    Without it an orphaned worker serves out its graceful timeout (30 s) holding the port, and
    the master a supervisor restarts cannot bind it. Killed, not asked to stop: with the master
    gone nobody would wait for it, and every request is one transaction that a lost connection
    rolls back (a spoke sends again whatever was not acknowledged).
    """
    die_with_parent(worker.ppid, signal.SIGKILL)


def _gunicorn(state: CliState, host: str, port: int, workers: int) -> None:
    """Several worker processes over one database (every piece of state lives in it).

    PostgreSQL is the hub's database; SQLite in WAL mode also serves several processes (each
    write transaction starts with BEGIN IMMEDIATE and waits its turn). The workers die with
    their master, and gunicorn binds with SO_REUSEADDR (its default), so a master restarted
    after a crash binds the port at once.
    """
    from gunicorn.app.base import BaseApplication

    from mes.app import create_app
    from mes.settings import load_settings

    settings = load_settings(state.instance)
    if settings.role == "spoke":
        raise click.UsageError(
            "A spoke is served by one process ('mes serve' without --workers), which also syncs "
            "with the hub in the background."
        )

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", None)
            self.cfg.set("post_fork", _worker_dies_with_master)
            self.cfg.set("umask", PROCESS_UMASK)  # gunicorn's own files (worker heartbeats)

        def load(self) -> Any:
            return create_app(settings)

    click.echo(
        f"Serving {settings.role} {settings.site_code} on http://{host}:{port}/ with "
        f"{workers} worker processes (Ctrl+C to stop)"
    )
    Server().run()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (more than 1: gunicorn; meant for a hub on PostgreSQL).",
)
@click.pass_obj
def serve_command(state: CliState, host: str, port: int, workers: int) -> None:
    """Serve this instance on HOST:PORT."""
    serve_app(state, host, free_port(host, port) if port == 0 else port, workers)


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(serve_command)
