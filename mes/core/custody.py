"""Chain of custody of a batch's material: who handed it to whom, when, where, in which container.

A cell therapy's material leaves and re-enters hands several times: the apheresis starting
material travels collection centre → (courier) → spoke; the final product, once QA released the
batch, spoke → (courier) → clinic. Each hand-over is one :class:`Transfer`, appended to the batch
ledger as one ``custody_transferred`` entry that holds the transfer and the e-signatures of both
sides (meanings "handed over" and "received", 21 CFR 11.50, each bound to the transfer's record
hash, 11.70). The chain so far says who holds each material now (:func:`holder`), and a transfer
from anyone else is refused (:func:`check_transfer`).

A party is a person and their organisation. A user of the site signs for themselves; a person
who is not a user (a courier, collection-centre staff) is a typed name and organisation, and the
site user's signature says what they did with that person ("received from courier …").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mes.core.errors import (
    CustodyRefused,
    InvalidInput,
    LoggerFileRefused,
    NotInCustody,
    ProductNotReleased,
    SelfCustodyTransfer,
)
from mes.core.esign import Meaning
from mes.core.logger import Window, check_window, compact_curve, parse_logger_csv
from mes.core.text import one_line
from mes.core.worded import Worded, words_of

RECORD_TYPE = "custody-transfer"
_NAME_LENGTH = 120
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Material(Worded):
    """What is handed over."""

    STARTING_MATERIAL = "starting_material", "Apheresis starting material"
    FINAL_PRODUCT = "final_product", "Final product"


MATERIAL_TITLES = words_of(Material)


class Side(Worded):
    """The side of a transfer a signer is on."""

    HANDED_OVER = "handed_over", "handed over"
    RECEIVED = "received", "received"


# Each side's e-signature meaning (11.50(a)(3)).
SIDE_MEANINGS: dict[Side, Meaning] = {
    Side.HANDED_OVER: Meaning.HANDED_OVER,
    Side.RECEIVED: Meaning.RECEIVED,
}


@dataclass(frozen=True)
class Party:
    """One side of a transfer: a person and their organisation.

    ``user_id`` and ``username`` name a user of the site, who signs; without them the party
    is external (a courier, collection-centre staff): their name and organisation are typed by
    the site user who signs, and are not a signature.
    """

    name: str
    organisation: str
    user_id: str | None = None
    username: str | None = None

    @property
    def external(self) -> bool:
        """A person who is not a user of the site (typed, does not sign)."""
        return self.user_id is None

    def as_dict(self) -> dict[str, Any]:
        """The party as the ledger keeps it."""
        return {
            "name": self.name,
            "organisation": self.organisation,
            "user_id": self.user_id,
            "username": self.username,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Party:
        """A party as the ledger kept it."""
        return cls(data["name"], data["organisation"], data.get("user_id"), data.get("username"))

    @property
    def words(self) -> str:
        """'Ann Lee (alee), Spoke Lyon' or 'J. Smith, FastCourier (not a user: typed)'."""
        if self.external:
            return f"{self.name}, {self.organisation} (not a user: typed by the signer)"
        return f"{self.name} ({self.username}), {self.organisation}"


def external_party(name: str | None, organisation: str | None, side: str) -> Party:
    """A person who is not a user, as typed: a name and an organisation, each one line."""
    typed_name = one_line(name, f"The name of the person who {side}", max_length=_NAME_LENGTH)
    typed_org = one_line(
        organisation, f"The organisation of the person who {side}", max_length=_NAME_LENGTH
    )
    if not typed_name or not typed_org:
        raise InvalidInput(
            f"The person who {side} is not a user here: their name and organisation are needed.",
            what_to_do="Type their name and organisation as on their ID or delivery note, or "
            "let them sign with their own badge if they are a user.",
        )
    return Party(typed_name, typed_org)


@dataclass(frozen=True)
class LoggerEvidence:
    """A shipment's temperature logger file attached to a transfer: its SHA-256 and a summary.

    The file itself is stored as received at the spoke (``logger_files``); the transfer binds
    to its digest, so the signatures cover exactly that file. A file uploaded with the transfer
    (:func:`logger_file_evidence`) also carries its name and ``findings``: the window check
    (lowest, highest, time outside, each excursion, the window) and the compact curve
    (:func:`mes.core.logger.compact_curve`) the hub draws.
    """

    sha256: str
    summary: str
    file_name: str = ""
    findings: Mapping[str, Any] | None = None

    @property
    def within_window(self) -> bool:
        """False when the uploaded file's time outside the window is beyond its allowance."""
        return self.findings is None or bool(self.findings["within_window"])

    def as_dict(self) -> dict[str, Any]:
        """The evidence as the ledger keeps it."""
        data: dict[str, Any] = {"sha256": self.sha256, "summary": self.summary}
        if self.findings is not None:
            data["file_name"] = self.file_name
            data["findings"] = dict(self.findings)
        return data


def logger_evidence(sha256: str | None, summary: str | None) -> LoggerEvidence | None:
    """The logger evidence as given (None when no file is attached); a malformed digest refused."""
    digest = (sha256 or "").strip().lower()
    if not digest:
        return None
    if not _SHA256.fullmatch(digest):
        raise InvalidInput(
            "The logger file's SHA-256 is not 64 hexadecimal characters.",
            what_to_do="Attach the logger file again.",
        )
    return LoggerEvidence(digest, one_line(summary, "The logger summary", max_length=500))


def logger_file_evidence(
    data: bytes, file_name: str, declared: Mapping[str, Any] | None
) -> LoggerEvidence:
    """A shipment's logger file uploaded with a transfer, read and checked against its window.

    The window is the one the recipe declares for shipments (``custody: {window,
    sampling_minutes}``).

    Refused with nothing written: a recipe that declares no such window, and every rule of
    :func:`mes.core.logger.parse_logger_csv` (:class:`LoggerFileRefused` names the line).
    """
    if not declared:
        raise LoggerFileRefused(
            "This batch's recipe declares no temperature window for shipments, so the logger "
            "file cannot be checked.",
            what_to_do="Record the transfer without the file and report a deviation, or ask "
            "the recipe's author to declare 'custody: window' in a new version.",
        )
    window = Window.from_recipe(declared["window"])
    series = parse_logger_csv(data, max_gap_minutes=declared["sampling_minutes"])
    check = check_window(series, window)
    name = one_line(file_name, "The file name", max_length=200) or "logger.csv"
    summary = (
        f"{check.readings} readings from {series.first:%Y-%m-%d %H:%M} to "
        f"{series.last:%Y-%m-%d %H:%M} UTC, lowest {check.lowest} °C, highest {check.highest} °C, "
        f"{check.minutes_outside} min outside {window.in_words()}, "
        f"{len(check.excursions)} excursion(s)"
    )
    return LoggerEvidence(
        hashlib.sha256(data).hexdigest(),
        summary,
        name,
        {**check.as_payload(), "curve": compact_curve(series, check)},
    )


def excursion_text(evidence: LoggerEvidence, material: str) -> str:
    """The TEMPERATURE_EXCURSION deviation's description for a transfer's logger file."""
    assert evidence.findings is not None
    window = evidence.findings["window"]
    return (
        f"Custody transfer of the {material}: logger file {evidence.file_name!r} "
        f"{evidence.findings['minutes_outside']} min outside {window['low']}–{window['high']} °C "
        f"(at most {window['max_minutes_outside']} min allowed); lowest "
        f"{evidence.findings['min']} °C, highest {evidence.findings['max']} °C, "
        f"{len(evidence.findings['excursions'])} excursion(s). The logger curve is attached."
    )


@dataclass(frozen=True)
class Transfer:
    """One hand-over as typed and scanned: the material, both sides, where, the container."""

    material: Material
    handed_over_by: Party
    received_by: Party
    place: str
    container: str
    logger: LoggerEvidence | None = None

    def as_dict(self) -> dict[str, Any]:
        """The transfer as its record and the ledger keep it."""
        data: dict[str, Any] = {
            "material": self.material.value,
            "handed_over_by": self.handed_over_by.as_dict(),
            "received_by": self.received_by.as_dict(),
            "place": self.place,
            "container": self.container,
        }
        if self.logger is not None:
            data["logger"] = self.logger.as_dict()
        return data


def typed_transfer(
    material: str,
    handed_over_by: Party,
    received_by: Party,
    place: str | None,
    container: str | None,
    logger: LoggerEvidence | None = None,
) -> Transfer:
    """A transfer from what was typed and scanned, each field refused with what to do."""
    try:
        chosen = Material(material)
    except ValueError:
        known = ", ".join(m.words.lower() for m in Material)
        raise InvalidInput(
            f"'{material}' is not a material whose custody is recorded.",
            what_to_do=f"Choose one of: {known}.",
        ) from None
    return Transfer(
        chosen, handed_over_by, received_by, _place(place), _container(container), logger
    )


def _container(container: str | None) -> str:
    shipper = one_line(container, "The shipper or container ID", max_length=_NAME_LENGTH)
    if not shipper:
        raise InvalidInput(
            "The shipper or container ID is missing.",
            what_to_do="Scan the ID on the shipper or container the material travels in.",
        )
    return shipper


def _place(place: str | None) -> str:
    where = one_line(place, "The place of the hand-over", max_length=_NAME_LENGTH)
    if not where:
        raise InvalidInput(
            "The place of the hand-over is missing.",
            what_to_do="Say where the material changed hands (for example 'goods-in, spoke').",
        )
    return where


def _organisation(text: str) -> str:
    return " ".join(text.split()).casefold()


def transfers_of(chain: Iterable[Mapping[str, Any]], material: Material) -> list[dict[str, Any]]:
    """The recorded transfers of ``material``, oldest first (each a ``custody_transferred`` record)."""
    return [dict(t) for t in chain if t["material"] == material.value]


def holder(
    chain: Sequence[Mapping[str, Any]], material: Material, site_organisation: str
) -> str | None:
    """The organisation holding ``material`` now, as the chain of custody so far says.

    The receiving side of its last transfer; before any transfer the final product is held by
    the site that made it, and the starting material by nobody the site knows of (it arrives
    from its collection centre).
    """
    recorded = transfers_of(chain, material)
    if recorded:
        return str(recorded[-1]["received_by"]["organisation"])
    return site_organisation if material is Material.FINAL_PRODUCT else None


def check_transfer(
    chain: Sequence[Mapping[str, Any]],
    transfer: Transfer,
    *,
    site_organisation: str,
    decision: str | None,
) -> None:
    """Refuse a transfer the chain of custody does not allow, with the broken rule named.

    Two different people (a person cannot hand over to themselves); at least one side a user
    who signs; the handing-over side's organisation holds the material now; the final product
    leaves only a batch QA released (``decision``: QA's disposition at the hub, as synced back).
    """
    giver, taker = transfer.handed_over_by, transfer.received_by
    same_user = giver.user_id is not None and giver.user_id == taker.user_id
    same_typed = (
        giver.external
        and taker.external
        and giver.name.casefold() == taker.name.casefold()
        and _organisation(giver.organisation) == _organisation(taker.organisation)
    )
    if same_user or same_typed:
        raise SelfCustodyTransfer(
            f"{giver.name} is on both sides of the transfer: custody passes between two people.",
            what_to_do="The person who hands over and the person who receives sign each for "
            "their side.",
        )
    if giver.external and taker.external:
        raise CustodyRefused(
            "Neither side of the transfer is a user of this site: the site records only "
            "hand-overs one of its users takes part in.",
            what_to_do="Record the transfer as the user who handed over or received.",
        )
    material = transfer.material
    current = holder(chain, material, site_organisation)
    if current is None:
        if not giver.external:
            raise NotInCustody(
                f"The {material.words.lower()} has not been received yet: nobody here holds "
                "it, so it cannot be handed over.",
                what_to_do="Record its receipt from the collection centre first.",
            )
    elif _organisation(current) != _organisation(giver.organisation):
        raise NotInCustody(
            f"The {material.words.lower()} is held by {current} (the chain of custody so far), "
            f"not by {giver.organisation}: {giver.name} cannot hand it over.",
            what_to_do=f"Record the hand-over by {current}, or correct the organisation typed.",
        )
    if material is Material.FINAL_PRODUCT and decision != "released":
        state = "was rejected by QA" if decision == "rejected" else "is not released by QA yet"
        raise ProductNotReleased(
            f"The batch {state}: its final product does not leave the site.",
            what_to_do="Dispatch the product once QA's release at the hub has reached this site.",
        )


def transfer_record(batch_id: str, number: str, transfer: Transfer, at: str) -> dict[str, Any]:
    """What both signatures bind to (11.70): the batch, the transfer and its time."""
    return {
        "type": RECORD_TYPE,
        "action": "transfer_custody",
        "batch": batch_id,
        "number": number,
        "at": at,
        **transfer.as_dict(),
    }


def transfer_in_words(payload: Mapping[str, Any]) -> str:
    """A ``custody_transferred`` entry as the record and the audit trail say it."""
    record = payload["record"]
    giver = Party.from_dict(record["handed_over_by"])
    taker = Party.from_dict(record["received_by"])
    material = MATERIAL_TITLES.get(record["material"], record["material"])  # type: ignore[call-overload]
    signed = "; ".join(
        f"signed '{s['manifestation']['meaning']}' by {s['manifestation']['printed_name']} "
        f"({s['manifestation']['username']})"
        + (" in place at the logged-in user's panel" if s.get("in_session_of") else "")
        for s in payload["signatures"]
    )
    logger = record.get("logger")
    evidence = (
        f"; temperature logger file SHA-256 {logger['sha256'][:12]}…: {logger['summary']}"
        if logger
        else ""
    )
    return (
        f"custody of the {material.lower()} in container {record['container']} passed from "
        f"{giver.words} to {taker.words} at {record['place']}; {signed}{evidence}"
    )


# --- custody of a material lot (a vector lot sent by the hub), at the spoke's lot receipt ------

LOT_RECORD_TYPE = "material-lot-custody"


def lot_receipt_record(
    lot_number: str,
    material: str,
    handed_over_by: Party,
    received_by: Party,
    place: str | None,
    container: str | None,
    *,
    previous: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """What the receiving user signs when a lot (a vector lot from the hub) enters custody here.

    A lot is received once: ``previous`` are the signatures already on its custody record
    (refused, naming who received it and when). The same two-people and container rules as a
    batch's transfers apply; the hander is typed (people of the hub are not users here).
    """
    if previous:
        first = previous[0]
        raise CustodyRefused(
            f"Lot {lot_number} was already received into custody by {first['printed_name']} "
            f"({first['username']}) at {first['at']}: a lot is received once.",
            what_to_do="Check the lot number on the label; a second delivery has its own lot.",
        )
    if handed_over_by.user_id is not None and handed_over_by.user_id == received_by.user_id:
        raise SelfCustodyTransfer(
            f"{received_by.name} is on both sides of the receipt: custody passes between two "
            "people.",
            what_to_do="Type the courier or hub person who handed the lot over.",
        )
    return {
        "type": LOT_RECORD_TYPE,
        "lot": lot_number,
        "material": material,
        "handed_over_by": handed_over_by.as_dict(),
        "received_by": received_by.as_dict(),
        "place": _place(place),
        "container": _container(container),
    }
