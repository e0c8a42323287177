"""``mes serve``: serve the instance's web application."""

from __future__ import annotations

import socket

import click

from mes.cli.common import CliState


def free_port(host: str, preferred: int) -> int:
    """``preferred`` if it is free, otherwise any free port (0 always picks a free one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        return probe.getsockname()[1]


def serve_app(state: CliState, host: str, port: int) -> None:
    """Serve the app with waitress, a production WSGI server (a hub may use gunicorn instead)."""
    import waitress

    from mes.app import create_app

    app = create_app(runtime=state.runtime())
    site = app.extensions["mes"].site
    click.echo(f"Serving {site.role} {site.code} on http://{host}:{port}/ (Ctrl+C to stop)")
    waitress.serve(app, host=host, port=port, threads=8, ident="mes")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="0 picks a free port.")
@click.pass_obj
def serve_command(state: CliState, host: str, port: int) -> None:
    """Serve this instance on HOST:PORT (waitress, 8 threads)."""
    serve_app(state, host, free_port(host, port) if port == 0 else port)


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(serve_command)
