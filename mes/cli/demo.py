"""``mes demo``: a hub and a spoke, two processes on two ports, ready to run a CAR-T batch.

The hub (site HUB) has the example master recipes approved and effective, signed by an author,
a reviewer and QA; it publishes them as bundles for the spoke. The spoke (site SPK1) pinned the
hub's key at ``mes init``, installed the bundles (each verified), and has people trained on the
recipes, released material lots and calibrated equipment — plus an expired lot, a quarantined
lot, an instrument out of service and one past its calibration date, to see the refusals.

A batch of the fresh CAR-T process takes about 14 days of validated time windows; so that a
visitor can run one end to end in a sitting, the demo also approves ``CART-CD19-FRESH-DEMO``: the
same recipe with each window shortened to minutes (its title and change reason say so).

So that the hub's network pages have something to show, the hub also holds months of history
(``--history N`` batches per spoke, demo data): copies of one CART-CD19-FRESH batch run through
the services at a scratch copy of the spoke, from SPK1 and three spokes known only to the hub,
one of them shifted and one drifting (:func:`seed_history`, :mod:`mes.services.history`).
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml

from mes.cli.common import CliState, command_context
from mes.cli.lifetime import dies_with_this_process
from mes.cli.serve import free_port, serve_app
from mes.core.batch import training_procedure
from mes.core.critical import critical_inputs
from mes.core.dates import date_pattern, local_date_text
from mes.core.history import SHIFT, Knob, default_knobs
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.lifecycle import Step
from mes.core.recipe import CompiledRecipe, load_recipe
from mes.core.summary import DEMO_PATIENT_PREFIX
from mes.services import equipment, history, materials, recipes, spokes
from mes.services.badges import enroll_badge, set_pin_for
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.instance import InstanceRequest, init_instance
from mes.services.runtime import Runtime, open_runtime
from mes.services.terminals import register_terminal
from mes.services.training import record_training
from mes.services.users import add_user, find_user
from mes.settings import load_settings
from mes.sync import client

# (user ID, full name, role, password) — demo only; every password meets the real policy.
HUB_USERS = (
    ("ada", "Ada Admin", "admin", "keys-to-the-suite"),
    ("aaron", "Aaron Author", "author", "write-the-recipe"),
    ("sam", "Sam Supervisor", "supervisor", "check-the-timers"),
    ("quinn", "Quinn Quality", "qa", "release-by-exception"),
    ("cora", "Cora Control", "qc", "results-after-release"),
)
SPOKE_USERS = (
    ("ada", "Ada Admin", "admin", "keys-to-the-suite"),
    ("olivia", "Olivia Operator", "operator", "cells-in-the-hood"),
    ("oscar", "Oscar Operator", "operator", "second-pair-of-eyes"),
    ("sam", "Sam Supervisor", "supervisor", "check-the-timers"),
    ("quinn", "Quinn Quality", "qa", "release-by-exception"),
    ("cora", "Cora Control", "qc", "results-after-release"),
    ("nina", "Nina Nurse", "clinician", "right-patient-and-bag"),
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
    "cora": ("BADGE-10007", "173649"),
    "nina": ("BADGE-10008", "284061"),
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
    keys: dict[str, SiteKey] = field(default_factory=dict)  # hub-only spokes' signing keys


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
    hub_only: tuple[str, ...] = (),
) -> DemoSites:
    """Create the instances: the hub approves and publishes, each spoke installs and is stocked.

    The demo has one spoke (SPK1); the sync tests build a hub on PostgreSQL
    (``hub_database_url``) with two spokes. ``DemoSites.spoke`` is the first spoke's folder, the
    others are ``folder / "spoke-CODE"``; each spoke has a one-time enrollment code.

    ``hub_only``: spokes known only to the hub (no instance): the recipes are published to them
    too, and each is enrolled at once with a key generated here (``DemoSites.keys``), with which
    their historical batches are sealed (:mod:`mes.services.history`).
    """
    hub_path = folder / "hub"
    hub = _init(
        hub_path, "hub", "HUB", "Demo hub (central QA)", HUB_USERS, database_url=hub_database_url
    )
    codes: dict[str, str] = {}
    keys: dict[str, SiteKey] = {}
    try:
        hub_ids = _add_people(hub, HUB_USERS)
        _attest(hub, hub_ids, HUB_USERS)
        approved = _approve_at_hub(hub, hub_ids)
        tokens = [
            _publish(hub, hub_ids, version_id, [*spoke_codes, *hub_only])
            for _name, version_id, _c in approved
        ]
        hub_key = hub.site.key.public.pem()
        for index, code in enumerate((*spoke_codes, *hub_only)):
            with hub.uow() as uow:
                ticket = spokes.add_spoke(
                    uow, command_context(), code, _spoke_name(index), DEMO_TIME_ZONE
                )
            codes[code] = ticket.code
        for code in hub_only:
            keys[code] = SiteKey.generate()
            with hub.uow() as uow:
                spokes.enroll(
                    uow, datetime.now(UTC), code, codes.pop(code), keys[code].public.pem().decode()
                )
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
    return DemoSites(folder, hub_path, paths[0], lines, codes[spoke_codes[0]], codes, keys)


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


HISTORY_SPOKES = ("SPK2", "SPK3", "SPK4")  # known only to the hub: their history alone
HISTORY_RECIPE = "CART-CD19-FRESH"
HISTORY_DAYS = 180
SHIFTED, DRIFTING = "SPK3", "SPK4"


def _history_critical() -> list[Any]:
    """The critical numeric inputs of the history's recipe (as the example file declares)."""
    name = "car-t-fresh.yaml"
    compiled = load_recipe((EXAMPLE_RECIPES / name).read_text(encoding="utf-8"), name).data
    numbers = ("number", "integer")
    kinds = {(p["id"], i["id"]): i["type"] for p in load_phases(compiled) for i in p["inputs"]}
    return [c for c in critical_inputs(compiled) if kinds.get((c.phase_id, c.value_id)) in numbers]


def load_phases(compiled: Any) -> Iterator[Any]:
    """Every phase of a compiled recipe, in order."""
    for unit in compiled["unit_procedures"]:
        for operation in unit["operations"]:
            yield from operation["phases"]


def history_knobs() -> tuple[Knob, ...]:
    """The demo's planted effects: SPK3 shifted, SPK4 drifting."""
    return default_knobs(_history_critical(), SHIFTED, DRIFTING)


def prepare_history(sites: DemoSites, per_site: int, now: datetime) -> list[str]:
    """Before the servers start: SPK1 enrolled at the hub, its numbers after its history.

    The hub pins SPK1's key (the demo holds both folders, as an administrator would carry the
    key) and issues a new one-time code for the spoke's own enrollment; the spoke's batch
    numbers of this year and the last continue after the ``per_site`` the hub holds. Returns
    the guide's lines about the history.
    """
    with _opened(sites.spoke) as spoke:
        public = spoke.site.key.public.pem().decode("ascii")
        with spoke.uow() as uow:
            history.hold_numbers(
                uow, "SPK1", {("SPK1", now.year): per_site, ("SPK1", now.year - 1): per_site}
            )
    with _opened(sites.hub) as hub:
        with hub.uow() as uow:
            spokes.enroll(uow, now, "SPK1", sites.enrollment_code, public)
        with hub.uow() as uow:
            code = spokes.issue_enrollment_code(uow, command_context(), "SPK1").code
    sites.enrollment_code = sites.enrollment_codes["SPK1"] = code
    lines = [
        f"History at the hub (demo data, patient IDs {DEMO_PATIENT_PREFIX}…): {per_site} "
        f"{HISTORY_RECIPE} batches from each of SPK1, {', '.join(HISTORY_SPOKES)} over the past "
        f"{HISTORY_DAYS // 30} months (the last {running(per_site)} of each "
        "hub-only spoke still in progress);"
    ]
    labels = {c.parameter: c.label for c in _history_critical()}
    for knob in history_knobs():
        how = "shifted" if knob.kind == SHIFT else "drifting"
        lines.append(
            f"  {knob.site} is {how} {knob.sigmas:+g} SD on {labels[knob.parameter]} "
            f"({knob.parameter})."
        )
    lines.append(
        "  The newest released batches are provisional, awaiting their sterility result: at the "
        "hub, cora (QC) opens Results and enters it, then quinn signs the final certification; "
        "quinn looks back at a lot from Network → Look-back."
    )
    return lines


def seed_history(
    folder: Path, hub_path: Path, spoke_path: Path, key_pems: dict[str, bytes], per_site: int,
    now: datetime,
) -> int:  # fmt: skip
    """Give the hub months of completed batches from every spoke (demo data); entries stored.

    The template is one batch of CART-CD19-FRESH run through the services by the demo's
    people at a scratch copy of the spoke (so the spoke itself holds no batch, and no record
    dated ahead); its copies are spread over the past six months, ``per_site`` per spoke
    (SPK1 and the hub-only spokes), with SPK3 SHIFTED and SPK4 DRIFTING (:func:`history_knobs`),
    sealed with each spoke's key and stored through the hub's ingest (:mod:`mes.services.history`);
    then quinn releases the completed ones at the hub, through the review service.
    Needs :func:`prepare_history` first.
    """
    scratch = folder / "template-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(spoke_path, scratch)
    passwords = {u[0]: u[3] for u in SPOKE_USERS}
    try:
        with _opened(scratch) as runtime:
            batch_id = history.drive_template(
                runtime.uow, HISTORY_RECIPE, at=now, passwords=passwords,
                identifiers={"patient_id": f"{DEMO_PATIENT_PREFIX}TEMPLATE"},
            )  # fmt: skip
            with runtime.uow(read_only=True) as uow:
                template = history.load_template(uow, batch_id)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    knobs = history_knobs()
    planned = history.plan_history(
        template, ("SPK1", *HISTORY_SPOKES), per_site, end=now - timedelta(hours=1),
        days=HISTORY_DAYS, knobs=knobs, in_progress=dict.fromkeys(HISTORY_SPOKES, running(per_site)),
    )  # fmt: skip
    keys = {code: SiteKey.from_pem(pem) for code, pem in key_pems.items()}
    with _opened(hub_path) as hub:
        stored = history.store_history(
            hub.uow, template, planned, keys, at=now, demo=True, knobs=knobs, per_site=per_site
        )
        with hub.uow(read_only=True) as uow:
            quinn, cora = find_user(uow, "quinn"), find_user(uow, "cora")
        password = next(u[3] for u in HUB_USERS if u[0] == "quinn")
        # Released CART-CD19-FRESH batches: certified final once their results are in; the
        # newest stay provisional, awaiting their 14-day sterility culture.
        history.release_history(
            hub.uow, stored, user_id=quinn.id, username="quinn", password=password, now=now,
            results_by=cora.id,
        )  # fmt: skip
    return sum(s.entries for s in stored)


def running(per_site: int) -> int:
    """How many of a hub-only spoke's batches are still in progress (for the live board)."""
    return 0 if per_site < 2 else 1 if per_site < 10 else 2


def _key_pems(sites: DemoSites) -> dict[str, bytes]:
    with _opened(sites.spoke) as spoke:
        pems = {"SPK1": spoke.site.key.private_pem()}
    return {**pems, **{code: key.private_pem() for code, key in sites.keys.items()}}


def _seed_in_background(
    folder: str, hub: str, spoke: str, pems: dict[str, bytes], per_site: int, now: str
) -> None:
    """The history, in a process of its own while the demo serves (see :func:`seed_history`)."""
    log = Path(folder) / "history.log"
    try:
        stored = seed_history(
            Path(folder), Path(hub), Path(spoke), pems, per_site, datetime.fromisoformat(now)
        )
        _write_whole(log, f"History stored at the hub: {stored} entries.\n")
    except Exception as err:
        _write_whole(log, f"History not stored: {err!r}\n")


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` so the file appears whole or not at all (a temporary file, renamed)."""
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


@contextmanager
def _opened(instance: Path) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(instance, env={}))
    try:
        yield runtime
    finally:
        runtime.close()


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
    click.echo(
        "  5. At the clinic: open the spoke's /bedside/ page (a tablet, 800x1280) as nina (clinician;"
    )
    click.echo(
        "     ada registers the tablet as a terminal), scan the bag's DIN and the wristband (P-0042)"
    )
    click.echo("     and sign the match with nina's badge + PIN; then start and end the infusion.")
    click.echo(
        "  After release: the hub's QA queue lists the history's newest CART-CD19-FRESH batches as"
    )
    click.echo(
        "     provisional, awaiting their sterility result: cora (QC) enters it, quinn certifies final."
    )


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
@click.option(
    "--history",
    "per_site",
    default=30,
    show_default=True,
    type=click.IntRange(0, 500),
    help="Batches per spoke the hub holds from the past months (demo data); 0: none.",
)
@click.pass_obj
def demo_command(
    state: CliState, port: int, folder: Path | None, no_serve: bool, per_site: int
) -> None:
    """Set up a demo hub and spoke (SQLite, their own keys) and serve both on 127.0.0.1."""
    folder = (folder or Path(tempfile.mkdtemp(prefix="mes-demo-"))).resolve()
    sites = build_demo(folder, hub_only=HISTORY_SPOKES if per_site else ())
    now = datetime.now(UTC)
    if per_site:
        sites.lines += prepare_history(sites, per_site, now)
    if per_site and no_serve:
        seed_history(folder, sites.hub, sites.spoke, _key_pems(sites), per_site, now)
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
        if per_site:
            seeding = multiprocessing.get_context("spawn").Process(
                target=_seed_in_background,
                args=(str(folder), str(sites.hub), str(sites.spoke), _key_pems(sites), per_site,
                      now.isoformat()),
                daemon=True,
            )  # fmt: skip
            seeding.start()
            click.echo(
                "The hub's history is being added in the background, then released by quinn "
                f"(a few minutes; {folder / 'history.log'} says when it is done)."
            )
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
