"""``mes init``: create an instance (hub or spoke) with its keys, schema and first administrator."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from pathlib import Path

import click

from mes.cli.common import CliState, out_option, read_password
from mes.core.access import normalise_username
from mes.services.instance import InstanceRequest, init_instance


@click.command("init")
@click.option(
    "--role", type=click.Choice(["hub", "spoke"]), required=True, help="What this site is."
)
@click.option("--site", "site_code", default=None, help="Site code, e.g. HUB or LDN1.")
@click.option("--site-name", default=None, help="The site's name as printed on records.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone of the site.")
@click.option("--database-url", default=None, help="Default: a SQLite file in the instance folder.")
@click.option("--admin", "admin_username", default=None, help="User ID of the first administrator.")
@click.option("--name", "admin_name", default=None, help="Full name of the first administrator.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the administrator's password from stdin."
)
@click.option(
    "--hub-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Spoke: the hub's public key file to trust for recipe bundles.",
)
@click.pass_obj
def init_command(
    state: CliState,
    role: str,
    site_code: str | None,
    site_name: str | None,
    time_zone: str,
    database_url: str | None,
    admin_username: str | None,
    admin_name: str | None,
    password_stdin: bool,
    hub_key: Path | None,
) -> None:
    """Create the instance folder, configuration, site key pair, database and first admin."""
    site_code = (site_code or ("HUB" if role == "hub" else "SPOKE1")).upper()
    admin_username = admin_username or click.prompt("Administrator user ID")
    admin_name = admin_name or click.prompt("Administrator full name")
    hub_key_pem = hub_key.read_bytes() if hub_key is not None else None
    password = read_password(password_stdin, "Administrator password")
    runtime = init_instance(
        InstanceRequest(
            path=state.instance,
            role=role,
            site_code=site_code,
            site_name=site_name or site_code,
            time_zone=time_zone,
            database_url=database_url,
            admin_username=admin_username,
            admin_name=admin_name,
            admin_password=password,
            hub_key_pem=hub_key_pem,
        ),
        datetime.now(UTC),
        getpass.getuser(),
        socket.gethostname(),
    )
    key_id = runtime.site.key.public.key_id
    pinned = runtime.site.hub_key
    runtime.close()
    click.echo(f"Created {role} instance {site_code} at {state.instance}")
    click.echo(f"Site public key id: {key_id}")
    if pinned is not None:
        click.echo(f"Trusted hub key id: {pinned.key_id}")
    click.echo(f"Administrator: {normalise_username(admin_username)}")


@click.group("site")
def site_group() -> None:
    """This site's identity."""


@site_group.command("key")
@out_option("Write the public key to this file (default: print it).")
@click.pass_obj
def key_command(state: CliState, out: Path | None) -> None:
    """Print this site's public key (PEM): spokes pin the hub's, the hub keeps the spokes'."""
    public = state.runtime().site.key.public
    if out is None:
        click.echo(public.pem().decode("ascii"), nl=False)
        return
    out.write_bytes(public.pem())
    click.echo(f"Wrote the public key {public.key_id} to {out}")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(init_command)
    group.add_command(site_group)
