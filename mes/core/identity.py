"""Chain of identity: the ISBT 128 Donation Identification Number and the batch's identifiers.

A DIN (ISBT 128 Data Structure 001) is 13 characters — ``αppppyynnnnnn``: the facility
identification number (α in A–N, P–Z, 1–9, then four digits), the year and a six-digit sequence —
followed by two flag characters. People read it with a boxed keyboard check character K, the
ISO/IEC 7064 Mod 37-2 check of the 13 characters, which protects manual entry; the bar code
carries it as ``=`` + the 13 characters + the flags, where Type 3 flags (``60``–``96``) hold the
same check as 60 + c.

Accepted forms (spaces ignored, upper case):

* ``A9999 26 123456 00 K`` — 13 characters, the flags and the check character (16);
* ``A999926123456K`` — 13 characters and the check character (14);
* ``=A99992612345600`` — the bar-code data; Type 3 flags are checked.

A wrong check character is refused with a message that says so: it means a typing error or a
label that is not what it claims. Only the structure and the check are implemented here; no
ICCBBA tables are shipped (they are licensed by ICCBBA).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.dates import DateNotUnderstood, parse_local_date
from mes.core.errors import InvalidInput
from mes.core.patterns import PatternInvalid, has_form

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_DIN = re.compile(r"^[A-NP-Z1-9][0-9]{4}[0-9]{2}[0-9]{6}$")


class InvalidDin(InvalidInput):
    """A DIN that is malformed or whose check character is wrong."""


def mod37_2(text: str) -> str:
    """The ISO/IEC 7064 Mod 37-2 check character of ``text`` (ISBT 128 keyboard check K)."""
    total = 0
    for char in text:
        total = (2 * total + ALPHABET.index(char)) % 37
    return ALPHABET[(1 - 2 * total) % 37]


@dataclass(frozen=True)
class Din:
    """A checked Donation Identification Number."""

    din: str  # the 13 characters that identify the donation
    flags: str | None  # the two flag characters, when given

    @property
    def check_character(self) -> str:
        """The keyboard check character K."""
        return mod37_2(self.din)

    @property
    def eye_readable(self) -> str:
        """As printed under the bar code: ``A9999 26 123456 00 K``."""
        d = self.din
        flags = f" {self.flags}" if self.flags else ""
        return f"{d[:5]} {d[5:7]} {d[7:]}{flags} {self.check_character}"

    def as_dict(self) -> dict[str, Any]:
        """As stored in a ledger entry."""
        return {"din": self.din, "flags": self.flags, "check": self.check_character}


def parse_din(text: str) -> Din:
    """Read a DIN as typed or scanned; refuse a malformed one or a wrong check character."""
    raw = re.sub(r"\s+", "", text or "").upper()
    if not raw:
        raise InvalidDin("No DIN was given.", what_to_do="Scan or type the DIN on the label.")
    if raw.startswith("="):
        return _from_barcode(raw)
    if len(raw) not in (14, 16):
        raise InvalidDin(
            f"'{text.strip()}' is not a DIN: it has {len(raw)} characters without spaces.",
            what_to_do="Type the 13 characters, the 2 flag characters and the boxed check "
            "character (16 in all), or scan the bar code.",
        )
    din, flags, check = raw[:13], (raw[13:15] if len(raw) == 16 else None), raw[-1]
    _check_structure(din, text)
    if flags is not None and not re.fullmatch(r"[0-9A-Z]{2}", flags):
        raise InvalidDin(f"The flag characters '{flags}' of the DIN are not valid.")
    if check not in ALPHABET:
        raise InvalidDin(f"'{check}' cannot be a check character.")
    # The expected character is never shown: that would let anyone "fix" a mistyped DIN.
    if check != mod37_2(din):
        raise InvalidDin(
            f"The check character '{check}' does not match DIN {din}: the DIN or the check "
            "character was mistyped.",
            what_to_do="Check the DIN for a typing error (compare it with the label), or scan "
            "the bar code instead.",
        )
    _check_type3_flags(din, flags)
    return Din(din=din, flags=flags)


def _from_barcode(raw: str) -> Din:
    body = raw[1:]
    if len(body) != 15:
        raise InvalidDin(
            f"'{raw}' is not an ISBT 128 DIN bar code (=, 13 characters and 2 flags).",
            what_to_do="Scan the DIN bar code of the label.",
        )
    din, flags = body[:13], body[13:]
    _check_structure(din, raw)
    if not re.fullmatch(r"[0-9A-Z]{2}", flags):  # as for a typed DIN
        raise InvalidDin(f"The flag characters '{flags}' of the DIN are not valid.")
    _check_type3_flags(din, flags)
    return Din(din=din, flags=flags)


def _check_structure(din: str, shown: str) -> None:
    if not _DIN.match(din):
        raise InvalidDin(
            f"'{shown.strip()}' is not a DIN: it must start with the facility number (a letter "
            "other than O, or a digit 1-9, then 4 digits), then 2 year digits and 6 sequence "
            "digits.",
            what_to_do="Scan or type the DIN exactly as on the label.",
        )


def _check_type3_flags(din: str, flags: str | None) -> None:
    if flags is None or not flags.isdigit() or not 60 <= int(flags) <= 96:
        return
    if ALPHABET[int(flags) - 60] != mod37_2(din):
        raise InvalidDin(
            f"The check flags '{flags}' do not match DIN {din}.",
            what_to_do="Rescan the label; if it repeats, the label is wrong: stop and call the "
            "supervisor.",
        )


# --- the batch's chain of identity ---------------------------------------------------------


def normalise_identifier(
    kind: str, value: str, label: str, pattern: str | None = None, *, time_zone: str = "UTC"
) -> Any:
    """A chain-of-identity value as entered at batch start, checked for its kind.

    ``isbt128_din`` → the DIN's parts (checked); ``identifier`` → upper-cased text matching the
    recipe's pattern; ``date`` → an ISO date, typed in the site's order or ISO
    (:func:`mes.core.dates.parse_local_date`).
    """
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{label}: a value is required.", what_to_do="Scan or type it.")
    if kind == "isbt128_din":
        try:
            return parse_din(text).as_dict()
        except InvalidDin as err:
            raise InvalidDin(f"{label}: {err.message}", what_to_do=err.what_to_do) from None
    if kind == "date":
        try:
            return parse_local_date(text, time_zone, label=label).isoformat()
        except DateNotUnderstood as refusal:
            raise InvalidInput(refusal.message, what_to_do=refusal.what_to_do) from None
    normalised = re.sub(r"\s+", "", text).upper()
    if len(normalised) > 100:
        raise InvalidInput(f"{label}: the identifier is longer than 100 characters.")
    try:
        expected_form = not pattern or has_form(pattern, normalised)
    except PatternInvalid as refusal:
        raise InvalidInput(
            f"{label}: the recipe's {refusal.message}",
            what_to_do="No batch can start with it: tell the recipe's owner, who approves a new "
            "version.",
        ) from None
    if not expected_form:
        raise InvalidInput(
            f"{label}: '{normalised}' does not have the form this recipe expects.",
            what_to_do="Check the identifier on the order or label.",
        )
    return normalised


def identity_text(value: Any) -> str:
    """A chain-of-identity value as people read it (a DIN in its eye-readable form)."""
    if isinstance(value, Mapping) and "din" in value:
        return Din(value["din"], value.get("flags")).eye_readable
    return str(value)


def scan_matches(kind: str, expected: Any, scanned: str) -> bool:
    """Whether a scanned label equals the batch's identifier (a DIN compares its 13 characters).

    A DIN scan that cannot be read as a DIN does not match.
    """
    if kind == "isbt128_din":
        try:
            return parse_din(scanned).din == expected["din"]
        except InvalidDin:
            return False
    if kind == "date":
        return scanned.strip() == str(expected)
    return re.sub(r"\s+", "", scanned or "").upper() == str(expected)
