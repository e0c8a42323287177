"""Material lots: the status QA gives a received lot, and its words.

A lot arrives in quarantine; QA releases or rejects it with an e-signature (21 CFR 211.84(a):
each lot is withheld from use until the quality unit releases it). Only a released lot within
its expiry date can be used in a batch (:mod:`mes.core.batch` refuses the others).
"""

from __future__ import annotations

from mes.core.worded import Worded, words_of


class LotStatus(Worded):
    """What QA decided about a lot (a new lot is in quarantine)."""

    QUARANTINE = "quarantine", "in quarantine"
    RELEASED = "released", "released"
    REJECTED = "rejected", "rejected"


LOT_STATUS_WORDS = words_of(LotStatus)
"""A lot's status in a sentence: "Lot L-1 is in quarantine"."""

LOT_DECISION_TITLES = {
    LotStatus.RELEASED: "Release",
    LotStatus.REJECTED: "Reject",
    LotStatus.QUARANTINE: "Quarantine",
}
"""QA's decision that gives a lot the status, as its button says it."""
