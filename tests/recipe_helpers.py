"""A small valid master recipe and the lifecycle actions the recipe service tests share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from support import NOW, PASSWORD, user_ctx

from mes.core.lifecycle import Step
from mes.services import recipes
from mes.services.esign import Credentials
from mes.store.uow import UnitOfWork

MakeUow = Callable[..., UnitOfWork]

TODAY = date(2026, 11, 21)  # NOW's date in Europe/London


def recipe_text(version: int = 1, *, code: str = "MINI-TEST", viability_action: int = 80) -> str:
    """A two-phase recipe; ``viability_action`` changes its content."""
    return f"""\
format: gmp-mes/recipe/1
recipe_code: {code}
version: {version}
title: Minimal test recipe
product: {{code: MINI, name: Mini product, modality: autologous_cell}}
expected_duration: 2 h
change_reason: Version {version} for the service tests.
chain_of_identity:
  - {{id: din, label: Donation identification number, kind: isbt128_din}}
unit_procedures:
  - id: receipt
    name: Receipt
    operations:
      - id: receive
        name: Receive the bag
        phases:
          - id: scan_bag
            name: Scan the bag
            instructions: Scan the **bag** label.
            verify: supervisor
            identity_checks:
              - {{id: bag_din, label: Bag DIN, matches: din}}
            inputs:
              - {{id: viability, label: Viability, type: number, unit: "%", decimals: 1, target: 95, alert_low: 85, action_low: {viability_action}}}
          - id: store_bag
            name: Store the bag
            instructions: Put the bag in the fridge.
            timers: [{{after: scan_bag, max: 2 h}}]
"""


def sign(
    make_uow: MakeUow,
    user_id: str,
    username: str,
    version_id: str,
    step: Step,
    **kwargs: object,
) -> recipes.StepResult:
    """``username`` signs one lifecycle step (first signing of a session: user ID + password)."""
    with make_uow() as uow:
        return recipes.sign_step(
            uow,
            user_ctx(user_id, at=kwargs.pop("at", NOW)),  # type: ignore[arg-type]
            version_id,
            step,
            Credentials(password=kwargs.pop("password", PASSWORD), username=username),  # type: ignore[arg-type]
            first_signing_in_session=True,
            **kwargs,  # type: ignore[arg-type]
        )
