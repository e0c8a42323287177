"""Equipment: whether an instrument is in service, and its words.

An instrument out of service (broken, failed its qualification) cannot be used in a batch
(EU GMP Part I 3.41: defective equipment is removed or labelled as defective); the logbook
records who changed the status and why.
"""

from __future__ import annotations

from enum import StrEnum


class EquipmentStatus(StrEnum):
    """Whether an instrument may be used."""

    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"


EQUIPMENT_STATUS_WORDS = {
    EquipmentStatus.IN_SERVICE: "in service",
    EquipmentStatus.OUT_OF_SERVICE: "out of service",
}
"""An instrument's status in a sentence: "CC-01 is out of service"."""
