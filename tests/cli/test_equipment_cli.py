"""``mes equipment``: registration, status, cleaning, calibration and the logbook."""

from __future__ import annotations

from datetime import date, timedelta

from cli_helpers import assert_refused

NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()


def add_counter(instance) -> None:
    added = instance.run(
        "equipment", "add", "cc-01", "--class", "cell_counter", "--name", "Cell counter",
        "--location", "Suite A", "--calibration-due", "2031-05-01",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.out == (
        "Registered CC-01 (Cell counter, cell_counter): in service, clean, "
        "calibration due 2031-05-01.\n"
    )


def test_every_event_of_an_instrument_is_a_line_of_its_logbook(instance):
    assert instance.init().code == 0
    assert instance.run("equipment", "list").out == "No equipment is registered.\n"
    add_counter(instance)
    steps = (
        (("status", "CC-01", "out_of_service", "--reason", "Door seal torn"),
         "CC-01 is out of service, clean, calibration due 2031-05-01.\n"),
        (("status", "CC-01", "in_service", "--reason", "Seal replaced"),
         "CC-01 is in service, clean, calibration due 2031-05-01.\n"),
        (("needs-cleaning", "CC-01", "--note", "Spill after count"),
         "CC-01 is in service, needs cleaning, calibration due 2031-05-01.\n"),
        (("clean", "cc-01"),
         "Cleaning recorded: CC-01 is in service, clean, calibration due 2031-05-01.\n"),
        (("calibrate", "CC-01", "--next-due", NEXT_YEAR, "--certificate", "CAL-2026-17"),
         f"Calibration recorded: CC-01 is in service, clean, calibration due {NEXT_YEAR}.\n"),
    )  # fmt: skip
    for args, said in steps:
        result = instance.run("equipment", *args)
        assert (result.code, result.out, result.err) == (0, said, "")

    listing = instance.run("equipment", "list").out.splitlines()
    assert listing[0].split() == [
        "ID", "CLASS", "NAME", "LOCATION", "STATUS", "CLEANING", "CALIBRATION", "DUE", "IN", "USE",
        "BY",
    ]  # fmt: skip
    assert listing[1].split() == [
        "CC-01", "cell_counter", "Cell", "counter", "Suite", "A", "in", "service", "clean",
        NEXT_YEAR, "—",
    ]  # fmt: skip

    log = instance.run("equipment", "log", "CC-01")
    assert log.code == 0, log.err
    title, now, header, *lines = log.out.splitlines()
    assert title == "CC-01 — Cell counter (cell_counter), Suite A"
    assert now == f"Now: in service, clean, calibration due {NEXT_YEAR}"
    assert header.split() == ["WHEN", "WHAT", "BY", "BATCH", "DETAIL"]
    what_and_detail = [(line[25:].split("  ")[0], line.rsplit("  ", 1)[1]) for line in lines]
    assert what_and_detail == [
        ("calibrated", f"certificate CAL-2026-17; next due {NEXT_YEAR}"),
        ("cleaned", "—"),
        ("needs cleaning", "Spill after count"),
        ("in service", "Seal replaced"),
        ("out of service", "Door seal torn"),
        ("registered", "Cell counter, cell_counter; calibration due 2031-05-01"),
    ]
    assert all("System (command line " in line for line in lines)
    assert instance.run("audit", "verify").code == 0


def test_equipment_refusals_are_one_line_and_change_nothing(instance):
    assert instance.init().code == 0
    add_counter(instance)
    listing = instance.run("equipment", "list").out
    log = instance.run("equipment", "log", "CC-01").out
    unknown = "There is no instrument 'CC-99'. Check the ID."
    for args, message in (
        (("add", "CC-01", "--class", "cell_counter", "--name", "Again"),
         "Equipment CC-01 is already registered."),
        (("add", "CC 02", "--class", "cell_counter", "--name", "Spaces"),
         "'CC 02' is not an equipment ID. Use capital letters, digits and '-' as on the ID "
         "label (e.g. CC-01)."),
        (("add", "CC-02", "--class", "Cell counter", "--name", "Counter"),
         "'Cell counter' is not an equipment class. Use the class ID the recipes use, e.g. "
         "cell_counter."),
        (("add", "CC-02", "--class", "cell_counter", "--name", "Counter", "--calibration-due",
          "2031-04-31"),
         "--calibration-due: '2031-04-31' is not a date. Write it as YYYY-MM-DD, e.g. "
         "2027-03-31."),
        (("status", "CC-99", "out_of_service", "--reason", "Broken"), unknown),
        (("status", "CC-01", "broken", "--reason", "Broken"),
         "'broken' is not an equipment status. Use in_service or out_of_service."),
        (("status", "CC-01", "out_of_service"),
         "A reason is required to change the status of an instrument. Say why the change is "
         "made."),
        (("status", "CC-01", "out_of_service", "--reason", " "),
         "A reason is required to change the status of an instrument. Say why the change is "
         "made."),
        (("status", "CC-01", "in_service", "--reason", "Fine"), "CC-01 already is in service."),
        (("clean", "CC-99"), unknown),
        (("needs-cleaning", "CC-99", "--note", "Spill"), unknown),
        (("needs-cleaning", "CC-01"),
         "Say why the instrument needs cleaning. For example: 'spill after harvest'."),
        (("calibrate", "CC-99", "--next-due", NEXT_YEAR, "--certificate", "C-1"), unknown),
        (("calibrate", "CC-01", "--next-due", "2020-01-01", "--certificate", "C-1"),
         "The next due date 2020-01-01 is not in the future. Enter the date the next "
         "calibration is due."),
        (("calibrate", "CC-01", "--next-due", NEXT_YEAR),
         "A calibration needs its certificate or report reference. Enter the certificate "
         "number."),
        (("log", "CC-99"), unknown),
    ):  # fmt: skip
        assert_refused(instance.run("equipment", *args), message)
    assert instance.run("equipment", "list").out == listing
    assert instance.run("equipment", "log", "CC-01").out == log
