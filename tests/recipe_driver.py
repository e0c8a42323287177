"""A recipe driver: runs a whole batch of any master recipe at a test spoke, as people would.

Given a :class:`~batch_helpers.Spoke` and a recipe file (``recipes/*.yaml``), the driver

* installs the recipe if the spoke does not have it, trains everyone on it, registers every
  material of the recipe with a released lot and every equipment class with a clean,
  calibrated instrument;
* starts a batch with a valid chain of identity (a DIN with its Mod 37-2 check character,
  identifiers that match the recipe's pattern, dates);
* executes every phase as it becomes ready: the clock moves on to each timer's minimum (the
  phase starts inside its window), each input gets a value inside its alert limits (the
  target, or the middle of the limits; the first option of a choice unless a condition of the
  recipe wants another or the caller chose; yes/no is yes; times in the past), every lot,
  instrument and label is scanned correctly, the performer signs and a different person of
  the verify role verifies;
* searches the phase's numbers so that its calculations fall inside their limits; where no
  values can, the deviation is accepted, commented and acknowledged so the batch completes;
* and has the supervisor sign the batch complete.

People: operator phases are performed by Olivia and verified by Oscar (operator), Sam
(supervisor) or Quinn (QA); supervisor phases are performed by Sam, QA phases by Quinn.

``run_batch(site, recipe_path, at=...)`` does it all and returns the batch ID; :class:`BatchRun`
lets a test stop before a phase (:meth:`BatchRun.run_until`) and act itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from batch_helpers import PEOPLE, Spoke
from sqlalchemy import select
from support import NOW, PASSWORD

from mes.core.batch import training_procedure
from mes.core.recipe import load_recipe
from mes.services import batches, driver, equipment, materials
from mes.services.driver import (  # noqa: F401 - the driver's parts, used by tests
    PERFORMERS,
    STEP,
    VERIFIERS,
    allowed_range,
    candidates,
    choose_numbers,
    default_number,
    din_barcode,
    din_for,
    example_of,
    identifiers_for,
    label_for,
    quantise,
    score,
    simulate,
    wanted_options,
)
from mes.services.esign import Credentials
from mes.services.training import is_qualified
from mes.store.models import Equipment, Material, MaterialLot, User

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
EXAMPLE_RECIPES = sorted(RECIPES.glob("*.yaml"))


# --- the masters a recipe needs ----------------------------------------------------------------


def equipment_id_for(equipment_class: str) -> str:
    """'freezer_minus_80' → 'FREEZER-MINUS-80-01'."""
    return f"{equipment_class.upper().replace('_', '-')[:36]}-01"


def prepare_site(site: Spoke, compiled_data: Mapping[str, Any]) -> tuple[dict, dict]:
    """Install nothing twice: train everyone, register materials with a released lot and an
    instrument per class. Returns ({material code: lot number}, {class: equipment ID})."""
    code, version = compiled_data["recipe_code"], compiled_data["version"]
    procedure = training_procedure(code, version)
    for username in PEOPLE:
        with site.uow() as uow:
            user = uow.session.get(User, site.ids[username])
            trained = is_qualified(uow, user, procedure, site.ctx(username))
        if not trained:
            site.train(username, code, version)
    needed_materials: dict[str, Mapping[str, Any]] = {}
    needed_classes: list[str] = []
    for unit in compiled_data["unit_procedures"]:
        for operation in unit["operations"]:
            for phase in operation["phases"]:
                for material in phase["materials"]:
                    needed_materials.setdefault(material["code"], material)
                for slot in phase["equipment"]:
                    if slot["class"] not in needed_classes:
                        needed_classes.append(slot["class"])
    lots: dict[str, str] = {}
    sam = site.ctx("sam", NOW - timedelta(days=1))
    for material_code, spec in needed_materials.items():
        with site.uow() as uow:
            known = uow.session.get(Material, material_code) is not None
            lot = uow.session.execute(
                select(MaterialLot.lot_number).where(
                    MaterialLot.material_code == material_code,
                    MaterialLot.status == "released",
                    MaterialLot.expiry > site.today + timedelta(days=90),
                )
            ).scalar()
        if not known:
            with site.uow() as uow:
                materials.add_material(
                    uow, sam, code=material_code, name=spec["name"], unit=spec["unit"]
                )
        if lot is None:
            lot = f"LOT-{material_code.removeprefix('MAT-')}-1"
            site.add_lot(lot, material_code, site.today + timedelta(days=365), "released")
        lots[material_code] = lot
    instruments: dict[str, str] = {}
    for equipment_class in needed_classes:
        with site.uow() as uow:
            found = uow.session.execute(
                select(Equipment.id)
                .where(
                    Equipment.equipment_class == equipment_class,
                    Equipment.status == "in_service",
                    Equipment.clean.is_(True),
                )
                .order_by(Equipment.id)
            ).scalar()
        if found is None:
            found = equipment_id_for(equipment_class)
            with site.uow() as uow:
                equipment.add_equipment(
                    uow, sam, equipment_id=found, equipment_class=equipment_class,
                    name=equipment_class.replace("_", " ").capitalize(), location="Suite A",
                    calibration_due=site.today + timedelta(days=180),
                )  # fmt: skip
        instruments[equipment_class] = found
    return lots, instruments


# --- running a batch ---------------------------------------------------------------------------


@dataclass
class BatchRun(driver.BatchRun):
    """One batch driven through its recipe at a test spoke; everyone signs with PASSWORD."""

    def credentials(self, username: str) -> Credentials:
        return Credentials(PASSWORD, username)


def compiled_recipe(recipe_path: Path | str) -> Mapping[str, Any]:
    """The compiled recipe of a file (as installed)."""
    path = Path(recipe_path)
    return load_recipe(path.read_text(encoding="utf-8"), path.name).data


def begin(
    site: Spoke,
    recipe_path: Path | str,
    *,
    at: datetime = NOW,
    choices: Mapping[str, Any] | None = None,
    **identifiers: str,
) -> BatchRun:
    """Prepare the site for the recipe (installing it if needed) and start a batch."""
    data = compiled_recipe(recipe_path)
    with site.uow() as uow:
        installed = {
            r.installed.recipe_code for r in batches.startable_recipes(uow, site.ctx("sam"))
        }
    if data["recipe_code"] not in installed:
        site.install(Path(recipe_path).read_text(encoding="utf-8"))
    lots, instruments = prepare_site(site, data)
    run = BatchRun(site, data, at, dict(choices or {}), lots, instruments)
    run.start(**identifiers)
    return run


def run_batch(
    site: Spoke,
    recipe_path: Path | str,
    *,
    at: datetime = NOW,
    choices: Mapping[str, Any] | None = None,
) -> str:
    """Run a whole batch of the recipe at the spoke, from start to the signed completion."""
    run = begin(site, recipe_path, at=at, choices=choices)
    run.run_until()
    run.finish()
    return run.batch_id
