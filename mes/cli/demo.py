"""``mes demo``: a hub and a spoke, two processes on two ports, ready to run a CAR-T batch.

The hub (site HUB) has the example master recipes approved and effective, signed by an author,
a reviewer and QA; it publishes them as bundles for the spoke. The spoke (site SPK1) pinned the
hub's key at ``mes init``, installed the bundles (each verified), and has people trained on the
recipes, released material lots and calibrated equipment — plus an expired lot, a quarantined
lot, an instrument out of service and one past its calibration date, to see the refusals.

A batch of the fresh CAR-T process takes about 14 days of validated time windows; so that a
visitor can run one end to end in a sitting, the demo also approves ``CART-CD19-FRESH-DEMO``: the
same recipe with each window shortened to minutes (its title and change reason say so).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
import yaml

from mes.cli.common import CliState, command_context
from mes.cli.lifetime import dies_with_this_process
from mes.cli.serve import free_port, serve_app
from mes.core.batch import training_procedure
from mes.core.dates import date_pattern, local_date_text
from mes.core.identity import mod37_2
from mes.core.lifecycle import Step
from mes.core.recipe import CompiledRecipe, load_recipe
from mes.services import equipment, materials, recipes, spokes
from mes.services.badges import enroll_badge, set_pin_for
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.instance import InstanceRequest, init_instance
from mes.services.runtime import Runtime
from mes.services.terminals import register_terminal
from mes.services.training import record_training
from mes.services.users import add_user, find_user
from mes.sync import client

# (user ID, full name, role, password) — demo only; every password meets the real policy.
HUB_USERS = (
    ("ada", "Ada Admin", "admin", "keys-to-the-suite"),
    ("aaron", "Aaron Author", "author", "write-the-recipe"),
    ("sam", "Sam Supervisor", "supervisor", "check-the-timers"),
    ("quinn", "Quinn Quality", "qa", "release-by-exception"),
)
SPOKE_USERS = (
    ("ada", "Ada Admin", "admin", "keys-to-the-suite"),
    ("olivia", "Olivia Operator", "operator", "cells-in-the-hood"),
    ("oscar", "Oscar Operator", "operator", "second-pair-of-eyes"),
    ("sam", "Sam Supervisor", "supervisor", "check-the-timers"),
    ("quinn", "Quinn Quality", "qa", "release-by-exception"),
)
# user ID → (badge code, PIN) — demo only; a keyboard-wedge scanner types the code + Enter, so
# typing it by hand works the same. Every PIN meets the real PIN rules.
BADGES = {
    "ada": ("BADGE-10001", "402918"),
    "aaron": ("BADGE-10002", "517394"),
    "sam": ("BADGE-10003", "638205"),
    "quinn": ("BADGE-10004", "749316"),
    "olivia": ("BADGE-10005", "851427"),
    "oscar": ("BADGE-10006", "962538"),
}
SOPS = ("SOP-CT-001 Aseptic processing in the isolator", "SOP-CT-014 Gowning for grade B")
SIGNERS = {
    Step.SUBMIT: "aaron",
    Step.REVIEW: "sam",
    Step.APPROVE: "quinn",
    Step.MAKE_EFFECTIVE: "quinn",
}
EXAMPLE_RECIPES = Path(__file__).resolve().parents[2] / "recipes"
RECIPE_FILES = ("car-t-fresh.yaml", "car-t-cryo.yaml", "mrna-vaccine-fill.yaml")
DEMO_TIME_ZONE = "Europe/London"  # both sites' (dates typed day first, DD/MM/YYYY)
DEMO_DIN = "A999926000042"  # a fake facility (A9999): demo data, not a real donation
EQUIPMENT_IDS = {
    "biosafety_cabinet": "BSC",
    "cell_counter": "CC",
    "flow_cytometer": "FC",
    "closed_bioreactor": "BR",
    "tube_welder": "TW",
    "tube_sealer": "TS",
    "fridge_2_8c": "FR",
    "freezer_minus_80": "FZ",
    "controlled_rate_freezer": "CRF",
    "ln2_storage": "LN2",
    "dry_shipper": "DS",
    "thawer": "TH",
    "balance": "BAL",
    "label_printer": "LP",
    "barcode_scanner": "SCN",
    "filling_isolator": "ISO",
    "filter_integrity_tester": "FIT",
    "visual_inspection_booth": "VIB",
}


@dataclass
class DemoSites:
    """Where the demo's two instances are."""

    folder: Path
    hub: Path
    spoke: Path
    lines: list[str]
    enrollment_code: str  # the (first) spoke's one-time code, used once the hub is up
    enrollment_codes: dict[str, str] = field(default_factory=dict)  # spoke code → one-time code


def _init(
    path: Path,
    role: str,
    code: str,
    name: str,
    users: Iterable[tuple[str, ...]],
    hub_key: bytes | None = None,
    database_url: str | None = None,
) -> Runtime:
    admin = next(u for u in users if u[2] == "admin")
    return init_instance(
        InstanceRequest(
            path=path,
            role=role,
            site_code=code,
            site_name=name,
            time_zone=DEMO_TIME_ZONE,
            database_url=database_url,
            admin_username=admin[0],
            admin_name=admin[1],
            admin_password=admin[3],
            hub_key_pem=hub_key,
        ),
        datetime.now(UTC),
        getpass.getuser(),
        socket.gethostname(),
    )


def _add_people(runtime: Runtime, users: Iterable[tuple[str, ...]]) -> dict[str, str]:
    ctx = command_context()
    for username, name, role, password in users:
        if role == "admin":
            continue
        with runtime.uow() as uow:
            add_user(uow, ctx, username=username, full_name=name, roles=[role], password=password)
    for username, *_ in users:  # badge + PIN (21 CFR 11.200(a)(1)), enrolled by the system
        badge, pin = BADGES[username]
        with runtime.uow() as uow:
            enroll_badge(uow, ctx, username, badge)
        with runtime.uow() as uow:
            set_pin_for(uow, ctx, username, pin)
    ids = {}
    with runtime.uow() as uow:
        for username, *_ in users:
            ids[username] = find_user(uow, username).id
    return ids


def _attest(
    runtime: Runtime,
    ids: dict[str, str],
    users: Iterable[tuple[str, ...]],
    terminal_id: str | None = None,
) -> None:
    for username, _name, role, password in users:
        if role == "admin":
            continue
        with runtime.uow() as uow:
            acknowledge_accountability(
                uow,
                Context(
                    at=datetime.now(UTC),
                    user_id=ids[username],
                    terminal="demo set-up",
                    terminal_id=terminal_id,
                ),
                Credentials(password, username),
                first_signing_in_session=True,
            )


def demo_recipe_text() -> str:
    """The fresh CAR-T recipe with every time window shortened to minutes (demo only).

    A minimum hold of one day becomes one minute; the latest start is 15 minutes after the
    shortened minimum (or the shortened maximum, if later), so a visitor sees timers count down
    without waiting for days.
    """
    data = yaml.safe_load((EXAMPLE_RECIPES / "car-t-fresh.yaml").read_text(encoding="utf-8"))
    data["recipe_code"] = "CART-CD19-FRESH-DEMO"
    data["title"] = data["title"] + " (demo: time windows shortened to minutes)"
    data["change_reason"] = (
        "Demo only, not for manufacturing: the time windows of CART-CD19-FRESH v1 shortened "
        "(one day becomes one minute) so that the whole process can be tried in one sitting."
    )
    compiled = load_recipe(
        (EXAMPLE_RECIPES / "car-t-fresh.yaml").read_text(encoding="utf-8"), "car-t-fresh.yaml"
    )
    seconds = {
        (p["id"], t["after"]): (t.get("min_seconds"), t.get("max_seconds"))
        for p in compiled.phases()
        for t in p["timers"]
    }
    for unit in data["unit_procedures"]:
        for operation in unit["operations"]:
            for phase in operation["phases"]:
                for timer in phase.get("timers", []):
                    low, high = seconds[(phase["id"], timer["after"])]
                    short_low = round(low / 1440) if low is not None else 0
                    short_high = max(short_low + 900, round(high / 1440) if high else 0)
                    timer.pop("min", None)
                    timer.pop("max", None)
                    if low is not None:
                        timer["min"] = f"{short_low} s"
                    if high is not None:
                        timer["max"] = f"{short_high} s"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _approve_at_hub(runtime: Runtime, ids: dict[str, str]) -> list[tuple[str, str, CompiledRecipe]]:
    """Import each recipe as Aaron and take it to effective; (file, version ID, compiled)."""
    passwords = {u[0]: u[3] for u in HUB_USERS}
    sources = [
        (name, (EXAMPLE_RECIPES / name).read_text(encoding="utf-8")) for name in RECIPE_FILES
    ]
    sources.append(("car-t-fresh-demo.yaml", demo_recipe_text()))
    approved = []
    now = datetime.now(UTC)
    for name, text in sources:
        with runtime.uow() as uow:
            version = recipes.import_recipe(
                uow, Context(at=now, user_id=ids["aaron"], terminal="demo set-up"), text, name
            )
            version_id = version.id
        for step in (Step.SUBMIT, Step.REVIEW, Step.APPROVE, Step.MAKE_EFFECTIVE):
            signer = SIGNERS[step]
            with runtime.uow() as uow:
                recipes.sign_step(
                    uow,
                    Context(at=now, user_id=ids[signer], terminal="demo set-up"),
                    version_id,
                    step,
                    Credentials(passwords[signer], signer),
                    first_signing_in_session=True,
                    effective_from=recipes.site_today(
                        uow, Context(at=now, user_id=None, terminal=None)
                    ),
                )
        approved.append((name, version_id, load_recipe(text, name)))
    return approved


def _publish(runtime: Runtime, ids: dict[str, str], version_id: str, sites: list[str]) -> str:
    with runtime.uow() as uow:
        token, _ = recipes.publish(
            uow,
            Context(at=datetime.now(UTC), user_id=ids["quinn"], terminal="demo set-up"),
            version_id,
            sites,
        )
    return token


def _masters(
    runtime: Runtime, ids: dict[str, str], compiled: Iterable[CompiledRecipe], terminal_id: str
) -> list[str]:
    """Register every material (a released lot each) and every equipment class the recipes use."""
    today = date.today()
    sam = Context(
        at=datetime.now(UTC), user_id=ids["sam"], terminal="demo set-up", terminal_id=terminal_id
    )
    quinn = Context(
        at=datetime.now(UTC), user_id=ids["quinn"], terminal="demo set-up", terminal_id=terminal_id
    )
    system = command_context()
    found: dict[str, tuple[str, str]] = {}
    classes: set[str] = set()
    for recipe in compiled:
        for phase in recipe.phases():
            for material in phase["materials"]:
                found.setdefault(material["code"], (material["name"], material["unit"]))
            classes.update(e["class"] for e in phase["equipment"])
    lots = []
    for code, (name, unit) in sorted(found.items()):
        with runtime.uow() as uow:
            materials.add_material(uow, sam, code=code, name=name, unit=unit)
        lot = code.removeprefix("MAT-") + "-L01"
        lots.append((lot, code, today + timedelta(days=365), "released"))
    lots += [
        ("SAMPLING-SYRINGE-OLD", "MAT-SAMPLING-SYRINGE", today - timedelta(days=3), "released"),
        ("SAMPLING-SYRINGE-NEW", "MAT-SAMPLING-SYRINGE", today + timedelta(days=400), "quarantine"),
    ]
    for lot, code, expiry, status in lots:
        with runtime.uow() as uow:
            materials.add_lot(uow, sam, material_code=code, lot_number=lot, expiry=expiry)
        if status == "released":
            with runtime.uow() as uow:
                materials.change_lot_status(
                    uow, quinn, lot, "released", "Certificate of analysis checked (demo)",
                    Credentials("release-by-exception", "quinn"), first_signing_in_session=True,
                )  # fmt: skip
    instruments = []
    for kind in sorted(classes):
        prefix = EQUIPMENT_IDS.get(kind, kind[:3].upper())
        instruments.append((f"{prefix}-01", kind, today + timedelta(days=180)))
    instruments += [
        ("CC-02", "cell_counter", today - timedelta(days=2)),
        ("BSC-02", "biosafety_cabinet", today + timedelta(days=90)),
    ]
    for equipment_id, kind, due in instruments:
        with runtime.uow() as uow:
            equipment.add_equipment(
                uow, system, equipment_id=equipment_id, equipment_class=kind,
                name=f"{kind.replace('_', ' ').capitalize()} {equipment_id[-1]}", location="Suite A",
                calibration_due=due,
            )  # fmt: skip
    with runtime.uow() as uow:
        equipment.set_status(
            uow, system, "BSC-02", "out_of_service", "HEPA filter integrity test failed (demo)"
        )
    return [
        "Materials (Materials page): one released lot of each, named like TEXMACS-L01;",
        "  SAMPLING-SYRINGE-OLD is expired and SAMPLING-SYRINGE-NEW is in quarantine.",
        "Equipment (Equipment page): " + ", ".join(i[0] for i in instruments[:-2]) + ";",
        "  CC-02 is past its calibration date and BSC-02 is out of service.",
    ]


def build_demo(
    folder: Path,
    *,
    hub_database_url: str | None = None,
    spoke_codes: tuple[str, ...] = ("SPK1",),
) -> DemoSites:
    """Create the instances: the hub approves and publishes, each spoke installs and is stocked.

    The demo has one spoke (SPK1); the sync tests build a hub on PostgreSQL
    (``hub_database_url``) with two spokes. ``DemoSites.spoke`` is the first spoke's folder, the
    others are ``folder / "spoke-CODE"``; each spoke has a one-time enrollment code.
    """
    hub_path = folder / "hub"
    hub = _init(
        hub_path, "hub", "HUB", "Demo hub (central QA)", HUB_USERS, database_url=hub_database_url
    )
    codes: dict[str, str] = {}
    try:
        hub_ids = _add_people(hub, HUB_USERS)
        _attest(hub, hub_ids, HUB_USERS)
        approved = _approve_at_hub(hub, hub_ids)
        tokens = [
            _publish(hub, hub_ids, version_id, list(spoke_codes))
            for _name, version_id, _c in approved
        ]
        hub_key = hub.site.key.public.pem()
        for index, code in enumerate(spoke_codes):
            with hub.uow() as uow:
                ticket = spokes.add_spoke(
                    uow, command_context(), code, _spoke_name(index), DEMO_TIME_ZONE
                )
            codes[code] = ticket.code
    finally:
        hub.close()
    paths = [folder / ("spoke" if i == 0 else f"spoke-{c}") for i, c in enumerate(spoke_codes)]
    master_lines: list[str] = []
    for index, (code, spoke_path) in enumerate(zip(spoke_codes, paths, strict=True)):
        lines = _build_spoke(spoke_path, code, _spoke_name(index), hub_key, tokens, approved)
        master_lines = master_lines or lines
    lines = ["Recipes approved and effective at the hub, installed at the spoke as signed bundles:"]
    lines += [f"  {c.recipe_code} v{c.version}  {c.title}" for _n, _v, c in approved]
    lines += master_lines
    return DemoSites(folder, hub_path, paths[0], lines, codes[spoke_codes[0]], codes)


def _spoke_name(index: int) -> str:
    return f"Demo spoke (hospital suite {chr(ord('A') + index)})"


def _build_spoke(
    spoke_path: Path,
    code: str,
    name: str,
    hub_key: bytes,
    tokens: list[str],
    approved: list[tuple[str, str, CompiledRecipe]],
) -> list[str]:
    spoke = _init(spoke_path, "spoke", code, name, SPOKE_USERS, hub_key)
    try:
        spoke_ids = _add_people(spoke, SPOKE_USERS)
        ctx = command_context()
        with spoke.uow() as uow:
            setup_terminal = register_terminal(uow, ctx, "Demo set-up (command line)", "server")
        _attest(spoke, spoke_ids, SPOKE_USERS, setup_terminal)
        for token in tokens:
            with spoke.uow() as uow:
                recipes.install_bundle(uow, ctx, token, "demo bundle")
        for username, _name, role, _password in SPOKE_USERS:
            if role == "admin":
                continue
            procedures = [
                *SOPS,
                *(training_procedure(c.recipe_code, c.version) for _n, _v, c in approved),
            ]
            for procedure in procedures:
                with spoke.uow() as uow:
                    record_training(
                        uow, ctx, username=username, procedure=procedure,
                        qualified_on=date.today() - timedelta(days=30),
                        expires_on=date.today() + timedelta(days=335),
                    )  # fmt: skip
        return _masters(spoke, spoke_ids, [c for _n, _v, c in approved], setup_terminal)
    finally:
        spoke.close()


def _serve_in_background(instance: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``mes serve`` of an instance in a child process that dies with this one (even killed)."""
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [
                sys.executable,
                "-m",
                "mes.cli",
                "--instance",
                str(instance),
                "serve",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MES_INSTANCE": ""},
            preexec_fn=dies_with_this_process(signal.SIGTERM),  # no threads have started yet
        )


def _wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _print_guide(sites: DemoSites, hub_url: str, spoke_url: str) -> None:
    click.echo(f"Demo folder: {sites.folder}")
    click.echo(f"Hub   (central QA, recipes):   {hub_url}/   instance {sites.hub}")
    click.echo(f"Spoke (manufacturing suite A): {spoke_url}/   instance {sites.spoke}")
    click.echo(
        "Log in with a user ID and password, or scan (type) a badge code and its PIN "
        "(the same people at both sites):"
    )
    click.echo(f"  {'user ID':<10} {'password':<22} {'badge':<13} {'PIN':<8} role")
    users = {u[0]: u for u in HUB_USERS + SPOKE_USERS}
    for username, _name, role, password in users.values():
        badge, pin = BADGES[username]
        click.echo(f"  {username:<10} {password:<22} {badge:<13} {pin:<8} {role}")
    for line in sites.lines:
        click.echo(line)
    click.echo("To run a CAR-T batch at the spoke:")
    click.echo(
        "  1. Log in as ada, open Terminals and register this browser (signing needs a registered terminal)."
    )
    click.echo(
        "  2. Log in as olivia: Batches → Start a batch → CART-CD19-FRESH-DEMO, and scan (type) e.g."
    )
    click.echo(
        f"     CoI CHA999926000042 · DIN {DEMO_DIN[:5]} {DEMO_DIN[5:7]} {DEMO_DIN[7:]} 00 {mod37_2(DEMO_DIN)} · patient P-0042 · a date of birth"
        f" ({date_pattern(DEMO_TIME_ZONE)}, e.g. {local_date_text(date(1970, 5, 17), DEMO_TIME_ZONE)})."
    )
    click.echo(
        "  3. Scan equipment IDs and lot numbers as listed; sign with badge + PIN (then the PIN alone);"
    )
    click.echo(
        "     To verify, acknowledge a deviation or sign the batch complete, sam need not log in: at"
    )
    click.echo(
        "     olivia's panel he taps Verify (Acknowledge, Sign the batch complete) in the bottom bar,"
    )
    click.echo(
        "     ticks 'Sign as another person' and scans his own badge + PIN; olivia stays logged in."
    )
    click.echo(
        "  4. Once complete, the batch reaches the hub within seconds. At the hub, log in as ada,"
    )
    click.echo(
        "     open Terminals and register this browser as the QA workstation (so that QA's release"
    )
    click.echo("     names it); then log in there as quinn, open QA,")
    click.echo(
        "     review it by exception, close its deviations, release it and download the signed PDF record;"
    )
    click.echo("     the spoke's board then shows it released, with its final label to print.")


def _stop_demo(signum: int, _frame: object) -> None:
    """Leave the spoke's server by an exception, so that the hub is stopped on the way out."""
    raise SystemExit(128 + signum)


@click.command("demo")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=int,
    help="The spoke's port (the hub takes the next free one).",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the two instances (default: a new temporary folder).",
)
@click.option("--no-serve", is_flag=True, help="Set up only (for scripts and tests).")
@click.pass_obj
def demo_command(state: CliState, port: int, folder: Path | None, no_serve: bool) -> None:
    """Set up a demo hub and spoke (SQLite, their own keys) and serve both on 127.0.0.1."""
    folder = (folder or Path(tempfile.mkdtemp(prefix="mes-demo-"))).resolve()
    sites = build_demo(folder)
    spoke_port = free_port("127.0.0.1", port)
    hub_port = free_port("127.0.0.1", spoke_port + 1)
    hub_url, spoke_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{spoke_port}"
    if no_serve:
        _print_guide(sites, hub_url, spoke_url)
        click.echo(
            f"Once the hub is served, enroll the spoke: mes --instance {sites.spoke} spoke enroll "
            f"--hub {hub_url} --code {sites.enrollment_code}"
        )
        return
    # The hub dies with the demo whatever ends it: SIGKILL through the kernel (the hub's
    # parent-death signal); SIGTERM and SIGHUP, like Ctrl+C, stop the spoke and then the hub.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_demo)
    hub = _serve_in_background(sites.hub, hub_port, folder / "hub.log")
    try:
        if not _wait_until_up(hub_url, hub):
            raise click.ClickException(f"The hub did not start; see {folder / 'hub.log'}.")
        state.instance = sites.spoke
        enrolled = client.enroll(state.runtime(), hub_url, sites.enrollment_code)
        _print_guide(sites, hub_url, spoke_url)
        click.echo(
            f"The spoke enrolled with hub {enrolled.hub_code} and syncs every "
            f"{state.runtime().settings.sync_interval_seconds} s in the background: batch records "
            "appear at the hub (Network page, open deviations within seconds)."
        )
        click.echo("Stop both with Ctrl+C. The demo folder stays until you delete it.")
        serve_app(state, "127.0.0.1", spoke_port)
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hub.kill()


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(demo_command)
