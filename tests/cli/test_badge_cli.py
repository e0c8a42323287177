"""``mes user badge`` and ``mes user pin`` (21 CFR 11.200(a)(1), 11.300): a badge enrolled from
standard input (a scan), revoked with the reason, a PIN set from standard input; bad input is
one line and exit 1."""

from __future__ import annotations

from cli_helpers import assert_refused
from test_cli import add_olivia

BADGE, PIN = "BADGE-10005", "851427"


def test_a_badge_is_enrolled_from_stdin_a_pin_set_and_the_badge_revoked_with_a_reason(instance):
    assert instance.init().code == 0
    add_olivia(instance)
    enrolled = instance.run("user", "badge", "Olivia", stdin=BADGE + "\n")
    assert (enrolled.code, enrolled.out, enrolled.err) == (
        0,
        "Enrolled badge …0005 to olivia.\n",
        "",
    )
    pin = instance.run("user", "pin", "olivia", "--pin-stdin", stdin=PIN + "\n")
    assert (pin.code, pin.out) == (0, "Set the PIN of olivia.\n"), pin.err
    revoked = instance.run(
        "user", "badge", "olivia", "--revoke", "--reason", "Lost in the changing room"
    )
    assert (revoked.code, revoked.out) == (0, "Revoked badge …0005 of olivia.\n"), revoked.err
    assert instance.run("audit", "verify").code == 0


def test_bad_badge_and_pin_input_is_refused_in_one_line(instance):
    assert instance.init().code == 0
    add_olivia(instance)
    assert_refused(
        instance.run("user", "badge", "olivia", stdin=""),
        "Standard input is empty: the badge code (scan the badge) was expected on it. "
        "Pipe the badge code (scan the badge) into the command, one line.",
    )
    assert_refused(
        instance.run("user", "badge", "olivia", "--revoke"),
        "A badge is revoked with the reason. Give --reason TEXT.",
    )
    assert_refused(
        instance.run("user", "badge", "olivia", "--revoke", "--reason", "lost"),
        "olivia has no active badge. Nothing to revoke.",
    )
    assert_refused(
        instance.run("user", "badge", "nobody", stdin=BADGE + "\n"),
        "There is no user 'nobody'. Check the user ID (see 'mes user list').",
    )
    assert instance.run("user", "badge", "olivia", stdin=BADGE + "\n").code == 0
    assert_refused(
        instance.run("user", "badge", "ada", stdin=BADGE + "\n"),
        "This badge is already enrolled (a badge identifies one person only). "
        "Scan another badge, or revoke this one first where it is enrolled.",
    )
    assert_refused(
        instance.run("user", "pin", "olivia", "--pin-stdin", stdin="123456\n"),
        "The PIN is not acceptable: it is a common or easily guessed PIN (repeated digits, a "
        "run, a pattern). Choose another PIN.",
    )
    assert_refused(
        instance.run("user", "pin", "olivia", "--pin-stdin", stdin="12ab56\n"),
        "The PIN is not acceptable: it must be digits only (0–9). Choose another PIN.",
    )
    assert_refused(
        instance.run("user", "pin", "olivia", "--pin-stdin", stdin=""),
        "Standard input is empty: the PIN was expected on it. "
        "Pipe the PIN into the command, one line.",
    )
