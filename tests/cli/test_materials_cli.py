"""``mes material`` and ``mes lot``: registration, listing, and QA's signed lot decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cli_helpers import assert_refused, run_bare
from conftest import Instance
from support import PASSWORD, user_ctx

from mes.services.esign import Credentials, acknowledge_accountability, signatures_of
from mes.services.materials import LOT_RECORD_TYPE, find_lot
from mes.services.runtime import open_runtime
from mes.services.users import find_user
from mes.settings import load_settings


def add_person(instance: Instance, username: str, role: str, *, attest: bool = True) -> None:
    """A user added with ``mes user add`` who (if ``attest``) acknowledged the e-signature
    accountability statement, as they would on their account page."""
    added = instance.run(
        "user", "add", username, "--name", f"{username.title()} Tester", "--role", role,
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.code == 0, added.err
    if not attest:
        return
    runtime = open_runtime(load_settings(instance.path, env={}))
    try:
        with runtime.uow() as uow:
            user_id = find_user(uow, username).id
        with runtime.uow() as uow:
            acknowledge_accountability(
                uow,
                user_ctx(user_id, at=datetime.now(UTC)),
                Credentials(PASSWORD, username),
                first_signing_in_session=True,
            )
    finally:
        runtime.close()


def receive_lot(instance: Instance, lot: str = "LOT-0001") -> None:
    """Register MAT-SYRINGE and receive ``lot`` of it."""
    material = instance.run("material", "add", "MAT-SYRINGE", "--name", "Syringe", "--unit", "each")
    assert material.code == 0, material.err
    received = instance.run("lot", "add", "MAT-SYRINGE", lot, "--expiry", "2031-06-30")
    assert received.code == 0, received.err


def decide(instance: Instance, *args: str, password: str = PASSWORD):
    """``mes lot status ARGS… --password-stdin`` with ``password`` on standard input."""
    return instance.run("lot", "status", *args, "--password-stdin", stdin=password + "\n")


def test_materials_are_registered_once_and_listed_by_code(instance):
    assert instance.init().code == 0
    assert instance.run("material", "list").out == "No materials are registered.\n"
    first = instance.run("material", "add", "mat-ts520", "--name", "Tubing set", "--unit", "set")
    assert first.code == 0, first.err
    assert first.out == "Registered material MAT-TS520: Tubing set (set).\n"
    assert instance.run("material", "add", "MAT-AB12", "--name", "Buffer", "--unit", "mL").code == 0
    listing = instance.run("material", "list").out
    assert listing.splitlines() == [
        "CODE       NAME        UNIT",
        "MAT-AB12   Buffer      mL",
        "MAT-TS520  Tubing set  set",
    ]

    for args, message in (
        (
            ("MAT-TS520", "--name", "Again", "--unit", "set"),
            "Material MAT-TS520 is already registered.",
        ),
        (
            ("mat ts520", "--name", "Spaces", "--unit", "set"),
            "'mat ts520' is not a material code. Use capital letters, digits and '-', as in "
            "the recipes (e.g. MAT-TS520).",
        ),
        (
            ("MAT-X1", "--name", "Percent", "--unit", "pct"),
            "'pct' is not a unit the recipes use. Use e.g. each, vial, mL, set.",
        ),
        (
            ("MAT-X1", "--name", " ", "--unit", "set"),
            "A material needs a name (up to 200 characters).",
        ),
    ):
        assert_refused(instance.run("material", "add", *args), message)
    assert instance.run("material", "list").out == listing
    assert instance.run("audit", "verify").out.startswith("ok: 5 entries; head 5 signed by")


def test_a_lot_arrives_in_quarantine_and_a_refused_lot_changes_nothing(instance):
    assert instance.init().code == 0
    assert instance.run("lot", "list").out == "No lots are registered.\n"
    receive_lot(instance)
    received = instance.run("lot", "add", "MAT-SYRINGE", "lot-0002", "--expiry", "2030-01-31")
    assert received.out == (
        "Received lot lot-0002 of MAT-SYRINGE, expiry 2030-01-31: in quarantine until QA "
        "releases it.\n"
    )
    listing = instance.run("lot", "list").out
    header, *rows = listing.splitlines()
    assert header.split() == [
        "LOT", "MATERIAL", "NAME", "EXPIRY", "STATUS", "SINCE", "USED", "IN", "REASON",
    ]  # fmt: skip
    assert [row.split()[:5] for row in rows] == [
        ["lot-0002", "MAT-SYRINGE", "Syringe", "2030-01-31", "quarantine"],
        ["LOT-0001", "MAT-SYRINGE", "Syringe", "2031-06-30", "quarantine"],
    ]
    assert [row.split()[-2:] for row in rows] == [["0", "—"], ["0", "—"]]

    for args, message in (
        (("MAT-NONE", "LOT-9", "--expiry", "2031-01-01"), "Material MAT-NONE is not registered. "
         "Register the material first."),
        (("MAT-SYRINGE", "Lot-0001", "--expiry", "2031-01-01"), "Lot Lot-0001 is already "
         "registered. Lot numbers are unique at a site; check the label."),
        (("MAT-SYRINGE", "LOT 9", "--expiry", "2031-01-01"), "'LOT 9' is not a lot number. Use "
         "letters, digits and . _ / - (up to 64), as on the supplier's label."),
        (("MAT-SYRINGE", "LOT-9", "--expiry", "2031-02-30"), "--expiry: '2031-02-30' is not a "
         "date. Write it as YYYY-MM-DD, e.g. 2027-03-31."),
    ):  # fmt: skip
        assert_refused(instance.run("lot", "add", *args), message)
    assert instance.run("lot", "list").out == listing


@pytest.mark.parametrize(
    ("args", "option", "written"),
    [
        (("lot", "add", "MAT-X1", "LOT-1", "--expiry"), "--expiry", "2031-13-01"),
        (("lot", "add", "MAT-X1", "LOT-1", "--expiry"), "--expiry", "20311231"),
        (("equipment", "add", "CC-01", "--class", "cell_counter", "--name", "C",
          "--calibration-due"), "--calibration-due", "31/12/2031"),
        (("equipment", "calibrate", "CC-01", "--certificate", "C-1", "--next-due"), "--next-due",
         "2031-W13-3"),
        (("equipment", "calibrate", "CC-01", "--certificate", "C-1", "--next-due"), "--next-due",
         "soon"),
    ],
)  # fmt: skip
def test_a_date_that_is_not_yyyy_mm_dd_is_refused_before_anything_is_opened(
    tmp_path, args, option, written
):
    result = run_bare("--instance", str(tmp_path / "no-instance"), *args, written)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {option}: '{written}' is not a date. Write it as YYYY-MM-DD, e.g. 2027-03-31.\n"
    )


def test_qa_releases_a_lot_with_an_e_signature_and_a_reason(instance):
    assert instance.init().code == 0
    add_person(instance, "quinn", "qa")
    receive_lot(instance)
    released = decide(
        instance, "lot-0001", "released", "--reason", "CoA checked", "--user", "Quinn"
    )
    assert released.code == 0, released.err
    assert released.out.startswith(
        "Lot LOT-0001 of MAT-SYRINGE is released: signed by Quinn Tester (quinn) — Released — "
    )
    row = instance.run("lot", "list").out.splitlines()[1]
    assert row.split()[4] == "released" and row.endswith("CoA checked")
    back = decide(
        instance, "LOT-0001", "quarantine", "--reason", "Supplier recall", "--user", "quinn"
    )
    assert back.code == 0, back.err
    assert " is in quarantine: signed by Quinn Tester (quinn) — Quarantined — " in back.out

    runtime = open_runtime(load_settings(instance.path, env={}))
    try:
        with runtime.uow() as uow:
            lot = find_lot(uow, "LOT-0001")
            signed = signatures_of(uow, LOT_RECORD_TYPE, lot.id)
    finally:
        runtime.close()
    assert [(s.username, s.meaning) for s in signed] == [
        ("quinn", "released"),
        ("quinn", "quarantined"),
    ]
    assert all(s.terminal.startswith("command line ") for s in signed)
    assert instance.run("audit", "verify").code == 0


def test_lot_decisions_are_refused_in_one_line_and_change_nothing(instance):
    assert instance.init().code == 0
    add_person(instance, "quinn", "qa")
    add_person(instance, "sam", "supervisor")
    add_person(instance, "quincy", "qa", attest=False)
    receive_lot(instance)
    listing = instance.run("lot", "list").out
    good = ("--reason", "CoA checked", "--user", "quinn")
    for args, password, message in (
        (("LOT-9999", "released", *good), PASSWORD, "There is no lot 'LOT-9999'. Check the lot "
         "number."),
        (("LOT-0001", "approved", *good), PASSWORD, "'approved' is not a lot status. Use "
         "released, rejected or quarantine."),
        (("LOT-0001", "released", "--user", "quinn"), PASSWORD, "A reason is required to set a "
         "lot to released. Say why the change is made."),
        (("LOT-0001", "quarantine", *good), PASSWORD, "Lot LOT-0001 already is quarantine."),
        (("LOT-0001", "released", "--reason", "ok", "--user", "sam"), PASSWORD, "You are not "
         "allowed to release, reject or quarantine material lots. Ask a user with the qa role."),
        (("LOT-0001", "released", "--reason", "ok", "--user", "ada"), PASSWORD, "You are not "
         "allowed to release, reject or quarantine material lots. Ask a user with the qa role."),
        (("LOT-0001", "released", "--reason", "ok", "--user", "nobody"), PASSWORD, "There is no "
         "user 'nobody'. Check the user ID (see 'mes user list')."),
        (("LOT-0001", "released", "--reason", "ok", "--user", "quincy"), PASSWORD, "Before your "
         "first signature you must acknowledge the e-signature accountability statement. Open "
         "'My account' and acknowledge the statement."),
        (("LOT-0001", "released", *good), "not-the-password", "The user ID or password is wrong. "
         "Try again; 4 more failed attempts will lock the account."),
    ):  # fmt: skip
        assert_refused(decide(instance, *args, password=password), message)
    assert instance.run("lot", "list").out == listing
    assert instance.run("audit", "verify").code == 0


def test_the_command_line_does_not_sign_lot_decisions_at_a_spoke(instance):
    assert instance.init(role="spoke", site="SPK1").code == 0
    add_person(instance, "quinn", "qa", attest=False)
    receive_lot(instance)
    listing = instance.run("lot", "list").out
    result = decide(instance, "LOT-0001", "released", "--reason", "CoA checked", "--user", "quinn")
    assert_refused(
        result,
        "At a spoke (SPK1) lot decisions are signed at a registered terminal, and the command "
        "line is not one; nothing was changed. Sign it on the Materials page at a registered "
        "terminal.",
    )
    assert instance.run("lot", "list").out == listing
    assert "locked" not in instance.run("user", "list").out
