"""A spoke ready to run batches, for the batch service, web and benchmark tests.

``Spoke`` sets up, on the test database: operators Olivia and Oscar, supervisor Sam and QA
Quinn, each attested and trained on the test recipe; a registered terminal; the test recipe
(or any recipe file) installed from a bundle signed by a separate hub key; released lots and
clean, calibrated instruments. Its methods run one service call each, as the named person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from support import NOW, PASSWORD, user_ctx

from mes.core.batch import Action, Batch, training_procedure
from mes.core.bundle import make_bundle
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.recipe import load_recipe
from mes.services import batches, equipment, materials, recipes
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.terminals import register_terminal
from mes.services.training import record_training
from mes.services.users import add_user
from mes.store.uow import UnitOfWork

TEST_RECIPE = """\
format: gmp-mes/recipe/1
recipe_code: BATCH-TEST
version: 1
title: Batch execution test recipe
product: {code: BT, name: Batch test product, modality: autologous_cell}
change_reason: For the batch execution tests.
chain_of_identity:
  din: {label: Donation identification number, kind: isbt128_din}
  patient_id: {label: Patient identifier, kind: identifier}
unit_procedures:
  - id: receipt
    name: Receipt
    operations:
      - id: receive
        name: Receive the bag
        phases:
          - id: check_bag
            name: Check the bag
            instructions: Scan the labels.
            verify: supervisor
            equipment: [{class: barcode_scanner}]
            identity_checks:
              - {id: bag_din, label: DIN on the bag, matches: din}
              - {id: bag_patient, label: Patient ID on the bag, matches: patient_id}
            inputs:
              bag_intact: {label: Bag intact, type: yes_no}
          - id: report_damage
            name: Record the damage
            when: {input: check_bag.bag_intact, equals: false}
            instructions: Photograph it.
            inputs:
              damage: {label: Damage, type: text}
          - id: count_cells
            name: Count cells
            instructions: Count.
            equipment: [{class: cell_counter}]
            materials: [{code: MAT-SYRINGE, name: Sampling syringe, quantity: 1, unit: each}]
            inputs:
              volume: {label: Bag volume, type: number, unit: mL, decimals: 0}
              viability:
                label: Viability
                type: number
                unit: "%"
                decimals: 1
                target: 95
                alert_low: 85
                action_low: 70
              viable_conc: {label: Viable cells, type: number, unit: "×10^6 cells/mL", decimals: 2}
            calculations:
              total:
                label: Total viable cells
                expression: round(viable_conc * volume, 1)
                unit: "×10^6 cells"
                decimals: 1
                action_low: 100
  - id: culture
    name: Culture
    operations:
      - id: tests
        name: Tests
        ordering: any_order
        phases:
          - {id: test_a, name: Test A, instructions: Do A., inputs: {a: {label: A, type: integer}}}
          - id: test_b
            name: Test B
            instructions: Do B.
            inputs: {b: {label: B, type: choice, options: ["pass", "fail"]}}
      - id: monitoring
        name: Monitoring
        ordering: parallel
        phases:
          - id: mon_1
            name: Monitor 1
            instructions: Watch.
            inputs: {t1: {label: T1, type: number, unit: "°C", decimals: 1}}
          - id: mon_2
            name: Monitor 2
            instructions: Watch.
            inputs: {t2: {label: T2, type: number, unit: "°C", decimals: 1}}
      - id: harvest_op
        name: Harvest
        phases:
          - id: harvest
            name: Harvest
            instructions: Harvest after 2 h, within 4 h of the count.
            timers: [{after: count_cells, min: 2 h, max: 4 h}]
            inputs:
              harvested: {label: Harvested, type: yes_no}
"""

DIN = "A999926123456"  # fake facility A9999 (test data, not a real FIN)
DIN_TYPED = f"{DIN} 00 {mod37_2(DIN)}"
DIN_BARCODE = f"={DIN}00"
OTHER_DIN = "A999926654321"
PATIENT = "PAT-0001"
IDENTIFIERS = {"din": DIN_TYPED, "patient_id": PATIENT}
PEOPLE = {
    "olivia": ["operator"],
    "oscar": ["operator"],
    "sam": ["supervisor"],
    "quinn": ["qa"],
}
LOT = "LOT-SYR-001"
# The culture phases of the test recipe before the harvest, with values inside their limits.
CULTURE = (
    ("test_a", {"a": "3"}),
    ("test_b", {"b": "pass"}),
    ("mon_1", {"t1": "37.0"}),
    ("mon_2", {"t2": "36.9"}),
)
SCANNER, COUNTER = "SCN-01", "CC-01"


@dataclass
class Spoke:
    """A spoke site on the test database with people, a terminal, recipes and masters."""

    make_uow: Callable[..., UnitOfWork]
    hub_key: SiteKey
    ids: dict[str, str] = field(default_factory=dict)
    terminal_id: str | None = None
    today: date = field(default_factory=NOW.date)

    def uow(self) -> UnitOfWork:
        """A unit of work at the spoke."""
        return self.make_uow("spoke", hub_key=self.hub_key.public)

    def ctx(
        self,
        username: str,
        at: datetime = NOW,
        *,
        terminal_id: str | None = None,
        terminal: str = "Suite A 1",
        unregistered: bool = False,
    ) -> Context:
        """``username`` at the registered terminal at ``at``.

        ``terminal_id``: another registered terminal; ``unregistered``: a browser bound to none.
        """
        bound = None if unregistered else terminal_id or self.terminal_id
        return user_ctx(self.ids[username], at=at, terminal_id=bound, terminal=terminal)

    def add_terminal(self, name: str) -> str:
        """Register another terminal of the site; its ID."""
        system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
        with self.uow() as uow:
            return register_terminal(uow, system, name, "Suite A")

    def add_person(
        self, username: str, roles: list[str], *, train_on: tuple[str, int] | None = None
    ) -> str:
        """Another person (attested; trained on ``train_on`` = (recipe code, version) if given)."""
        system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
        with self.uow() as uow:
            self.ids[username] = add_user(
                uow, system, username=username, full_name=f"{username.title()} Tester",
                roles=roles, password=PASSWORD,
            )  # fmt: skip
        with self.uow() as uow:
            acknowledge_accountability(
                uow,
                self.ctx(username, NOW - timedelta(hours=1)),
                Credentials(PASSWORD, username),
                first_signing_in_session=True,
            )
        if train_on is not None:
            self.train(username, *train_on)
        return self.ids[username]

    def set_up(self, recipe_text: str = TEST_RECIPE, *, train: bool = True) -> Spoke:
        """People, terminal, recipe, masters."""
        system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
        with self.uow() as uow:
            self.terminal_id = register_terminal(uow, system, "Suite A 1", "Suite A")
        for username, roles in PEOPLE.items():
            self.add_person(username, roles)
        compiled = self.install(recipe_text)
        if train:
            for username in PEOPLE:
                self.train(username, compiled.recipe_code, compiled.version)
        self.add_masters()
        return self

    def install(self, recipe_text: str, effective_from: date | None = None) -> Any:
        """Install a recipe from a bundle signed by the hub key; the compiled recipe."""
        compiled = load_recipe(recipe_text, "test.yaml")
        token = make_bundle(
            compiled.data,
            effective_from=effective_from or self.today - timedelta(days=1),
            sites=["SPK1"],
            issuer="HUB",
            issued_at=NOW - timedelta(days=1),
            key=self.hub_key,
        )
        with self.uow() as uow:
            recipes.install_bundle(
                uow, Context.command_line(NOW, "tester", "testhost"), token, "test.jws"
            )
        return compiled

    def train(
        self, username: str, code: str = "BATCH-TEST", version: int = 1, **dates: Any
    ) -> None:
        """Record training of ``username`` on a recipe version."""
        with self.uow() as uow:
            record_training(
                uow,
                Context.command_line(NOW - timedelta(days=1), "tester", "testhost"),
                username=username,
                procedure=training_procedure(code, version),
                qualified_on=dates.get("qualified_on", self.today - timedelta(days=30)),
                expires_on=dates.get("expires_on"),
            )

    def add_masters(self) -> None:
        """Released syringe lot, a scanner and a cell counter (clean, calibrated)."""
        system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
        sam = self.ctx("sam", NOW - timedelta(days=1))
        with self.uow() as uow:
            materials.add_material(
                uow, sam, code="MAT-SYRINGE", name="Sampling syringe", unit="each"
            )
        self.add_lot(LOT, "MAT-SYRINGE", self.today + timedelta(days=365), "released")
        for equipment_id, kind in ((SCANNER, "barcode_scanner"), (COUNTER, "cell_counter")):
            with self.uow() as uow:
                equipment.add_equipment(
                    uow, system, equipment_id=equipment_id, equipment_class=kind,
                    name=kind.replace("_", " ").title(), location="Suite A",
                    calibration_due=self.today + timedelta(days=180),
                )  # fmt: skip

    def add_lot(self, lot: str, material: str, expiry: date, status: str = "released") -> None:
        """Receive a lot and (unless quarantine) have QA set its status."""
        with self.uow() as uow:
            materials.add_lot(
                uow, self.ctx("sam", NOW - timedelta(days=1)), material_code=material,
                lot_number=lot, expiry=expiry,
            )  # fmt: skip
        if status != "quarantine":
            with self.uow() as uow:
                materials.change_lot_status(
                    uow, self.ctx("quinn", NOW - timedelta(days=1)), lot, status, "QC passed",
                    Credentials(PASSWORD, "quinn"), first_signing_in_session=True,
                )  # fmt: skip

    # -- batch actions, one service call each ------------------------------------------

    def start(self, who: str = "olivia", at: datetime = NOW, **identifiers: str) -> Batch:
        """Start a BATCH-TEST batch."""
        with self.uow() as uow:
            return batches.start_batch(
                uow, self.ctx(who, at), "BATCH-TEST", identifiers or IDENTIFIERS,
                Credentials(PASSWORD, who), first_signing_in_session=True,
            )  # fmt: skip

    def start_phase(
        self, batch_id: str, phase: str, who: str = "olivia", at: datetime = NOW
    ) -> Batch:
        with self.uow() as uow:
            return batches.start_phase(uow, self.ctx(who, at), batch_id, phase)

    def record(
        self, batch_id: str, phase: str, who: str = "olivia", at: datetime = NOW, **data: Any
    ) -> batches.PhaseResult:
        with self.uow() as uow:
            return batches.record_phase(uow, self.ctx(who, at), batch_id, phase, **data)

    def sign(
        self,
        batch_id: str,
        phase: str,
        action: Action = Action.PERFORM,
        who: str = "olivia",
        at: datetime = NOW,
        password: str = PASSWORD,
        seen_seq: int | None = None,
    ) -> Batch:
        with self.uow() as uow:
            return batches.sign_phase(
                uow, self.ctx(who, at), batch_id, phase, action,
                Credentials(password, who), first_signing_in_session=True, seen_seq=seen_seq,
            )  # fmt: skip

    def acknowledge(
        self, batch_id: str, deviation: str, who: str = "sam", at: datetime = NOW
    ) -> Batch:
        with self.uow() as uow:
            return batches.acknowledge_deviation(
                uow, self.ctx(who, at), batch_id, deviation, Credentials(PASSWORD, who),
                first_signing_in_session=True,
            )  # fmt: skip

    def comment(
        self, batch_id: str, deviation: str, text: str, who: str = "olivia", at: datetime = NOW
    ) -> Batch:
        with self.uow() as uow:
            return batches.comment_deviation(uow, self.ctx(who, at), batch_id, deviation, text)

    def view(self, batch_id: str, who: str = "olivia", at: datetime = NOW) -> batches.BatchView:
        with self.uow() as uow:
            return batches.get_batch(uow, self.ctx(who, at), batch_id)

    # -- whole phases -------------------------------------------------------------------

    def do_check_bag(self, batch_id: str, at: datetime = NOW, intact: bool = True) -> None:
        """Receipt: start, scan scanner and both labels, record, perform; Sam verifies."""
        self.start_phase(batch_id, "check_bag", at=at)
        result = self.record(
            batch_id, "check_bag", at=at,
            values={"bag_intact": "yes" if intact else "no"},
            equipment={0: SCANNER},
            identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
        )  # fmt: skip
        assert not result.field_errors, result.field_errors
        self.sign(batch_id, "check_bag", at=at)
        self.sign(batch_id, "check_bag", Action.VERIFY, who="sam", at=at)

    def do_count(
        self, batch_id: str, at: datetime = NOW, viability: str = "92.0"
    ) -> batches.PhaseResult:
        """Count: start, counter, syringe lot, values; performed."""
        self.start_phase(batch_id, "count_cells", at=at)
        result = self.record(
            batch_id, "count_cells", at=at,
            values={"volume": "200", "viability": viability, "viable_conc": "5.00"},
            equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
            comments={"viability": "Low viability reported to QA"},
        )  # fmt: skip
        assert not result.field_errors, result.field_errors
        self.sign(batch_id, "count_cells", at=at)
        return result

    def do_simple(
        self, batch_id: str, phase: str, values: dict[str, str], at: datetime = NOW
    ) -> None:
        """A phase with values only: start, record, perform."""
        self.start_phase(batch_id, phase, at=at)
        self.record(batch_id, phase, at=at, values=values)
        self.sign(batch_id, phase, at=at)

    def do_culture(self, batch_id: str, at: datetime = NOW) -> None:
        """Tests A and B, then both monitors: every culture phase before the harvest."""
        for phase, values in CULTURE:
            self.do_simple(batch_id, phase, values, at=at)

    def do_culture_and_harvest(self, batch_id: str, at: datetime = NOW) -> None:
        """Every culture phase, then the harvest: all that is left after the count."""
        self.do_culture(batch_id, at=at)
        self.do_simple(batch_id, "harvest", {"harvested": "yes"}, at=at)


def spoke(make_uow: Callable[..., UnitOfWork], **options: Any) -> Spoke:
    """A set-up spoke on the test database (see :class:`Spoke`)."""
    return Spoke(make_uow, SiteKey.generate()).set_up(**options)
