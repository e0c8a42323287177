"""Equipment: whether an instrument is in service, and its words.

An instrument out of service (broken, failed its qualification) cannot be used in a batch
(EU GMP Part I 3.41: defective equipment is removed or labelled as defective); the logbook
records who changed the status and why.
"""

from __future__ import annotations

from mes.core.worded import Worded, words_of


class EquipmentStatus(Worded):
    """Whether an instrument may be used."""

    IN_SERVICE = "in_service", "in service"
    OUT_OF_SERVICE = "out_of_service", "out of service"


EQUIPMENT_STATUS_WORDS = words_of(EquipmentStatus)
"""An instrument's status in a sentence: "CC-01 is out of service"."""
