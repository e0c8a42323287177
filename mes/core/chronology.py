"""Contemporaneous and consistent times (ALCOA+; 21 CFR 11.10(e); EU GMP Annex 11 §9, §12.4).

Every entry carries the time its writer's clock gave it. The hub cannot know when an event really
happened, but it can prove two kinds of recorded time false, and it never lets a decision come
before what it decides on:

* **dated ahead** — an entry dated later than the moment the hub received it, beyond the clock
  skew the sites may have (``sync.clock_skew_seconds``): nobody records an event before it
  happens, so the writer's clock was wrong or the entry was made up (:func:`dated_ahead`);
* **backwards** — an entry dated earlier than the entry before it in the same chain, beyond the
  same skew: a chain is written in order, and a spoke never dates an entry before the one it
  follows (:meth:`mes.core.batch.Batch._append` holds a clock that steps back at the last time),
  so such a step means the entries were not written as the chain says (:func:`dated_backwards`);
* **a decision before its record** — a release is not signed at a time earlier than an entry
  it releases (:func:`latest_after`).

The review by exception turns the first two into blocking findings (mes.core.review), the hub's
ingest logs the first as it receives a chunk (mes.services.ingest), and the release refuses the
third. One rule each, here; plain functions of entries and times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mes.core.clock import parse_utc_text
from mes.core.ledger import SealedEntry


@dataclass(frozen=True)
class TimeProblem:
    """A run of consecutive entries whose times cannot be true, and the worst of them.

    ``reference`` is what the worst entry's time is judged against: when the hub received it
    (dated ahead), or the time of entry ``reference_seq`` before it (backwards).
    """

    first_seq: int
    last_seq: int
    worst_seq: int
    worst_at: datetime
    reference: datetime
    reference_seq: int | None = None

    @property
    def gap(self) -> timedelta:
        """How far the worst entry's time is from its reference (always positive)."""
        return abs(self.worst_at - self.reference)

    @property
    def entries(self) -> str:
        """``Entry 57`` or ``Entries 1–166``."""
        if self.first_seq == self.last_seq:
            return f"Entry {self.first_seq}"
        return f"Entries {self.first_seq}–{self.last_seq}"

    def ahead_sentence(self, skew_seconds: int) -> str:
        """In words: "Entry 57 is dated 2026-12-19 14:02 UTC, 13 days after the hub received it …"."""
        worst = (
            f"entry {self.worst_seq} is dated {when(self.worst_at)}, {duration(self.gap)} after "
            f"the hub received it ({when(self.reference)})"
        )
        many = f"are dated after the hub received them, up to {duration(self.gap)}"
        return self._sentence(worst, many, skew_seconds)

    def backwards_sentence(self, skew_seconds: int) -> str:
        """In words, e.g. "Entry 58 is dated 2026-12-06 09:00 UTC, 13 days before entry 57 …"."""
        before = f"entry {self.reference_seq} ({when(self.reference)})"
        worst = (
            f"entry {self.worst_seq} is dated {when(self.worst_at)}, {duration(self.gap)} "
            f"before {before}"
        )
        return self._sentence(worst, f"are dated before {before}", skew_seconds)

    def _sentence(self, worst: str, many: str, skew_seconds: int) -> str:
        """The worst entry alone, or the run ("Entries 23–324 <many>: <worst>"), and the skew."""
        if self.first_seq == self.last_seq:
            head = worst[0].upper() + worst[1:]
        else:
            head = f"{self.entries} {many}: {worst}"
        return f"{head}; at most {skew_seconds} s of clock difference is allowed."


def when(at: datetime) -> str:
    """A time to the minute in UTC, as the findings name it: ``2026-12-19 14:02 UTC``."""
    return f"{at:%Y-%m-%d %H:%M} UTC"


def duration(delta: timedelta) -> str:
    """A length of time in the largest unit that reads well: 301 s, 15 min, 5 h 3 min, 13 days."""
    seconds = int(abs(delta).total_seconds())
    if seconds < 600:  # beside a skew of a few hundred seconds, say seconds
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(seconds / 86400)} days"


def _runs(found: list[tuple[SealedEntry, datetime, datetime, int | None]]) -> list[TimeProblem]:
    """Group (entry, its time, its reference, reference seq) into runs of consecutive seqs."""
    problems: list[TimeProblem] = []
    run: list[tuple[SealedEntry, datetime, datetime, int | None]] = []
    for item in [*found, None]:
        if item is not None and (not run or item[0].seq == run[-1][0].seq + 1):
            run.append(item)
            continue
        if run:
            worst = max(run, key=lambda r: abs(r[1] - r[2]))
            problems.append(
                TimeProblem(
                    first_seq=run[0][0].seq,
                    last_seq=run[-1][0].seq,
                    worst_seq=worst[0].seq,
                    worst_at=worst[1],
                    reference=worst[2],
                    reference_seq=worst[3],
                )
            )
        run = [item] if item is not None else []
    return problems


def dated_ahead(
    entries: Iterable[SealedEntry], received: Mapping[int, datetime], skew_seconds: int
) -> list[TimeProblem]:
    """Entries dated more than ``skew_seconds`` after the hub received them, in runs.

    ``received``: when the hub received each entry (by seq); entries it does not name (written
    here, or received before receipts were kept) are not judged. Rule: no entry is dated after
    the moment it was received, give or take the allowed clock skew (ALCOA+ contemporaneous).
    """
    skew = timedelta(seconds=skew_seconds)
    found = []
    for entry in entries:
        got = received.get(entry.seq)
        if got is None:
            continue
        at = parse_utc_text(entry.body["at"])
        if at > got + skew:
            found.append((entry, at, got, None))
    return _runs(found)


def dated_backwards(entries: Iterable[SealedEntry], skew_seconds: int) -> list[TimeProblem]:
    """Entries dated more than ``skew_seconds`` before an earlier entry of their chain, in runs.

    Judged against the latest time recorded so far (not only the entry just before), so a chain
    cannot walk back in steps each within the tolerance. Rule: a chain's times do not go
    backwards (ALCOA+ consistent: chronological, sequence-enforced).
    """
    skew = timedelta(seconds=skew_seconds)
    found = []
    latest: tuple[datetime, int] | None = None
    for entry in entries:
        at = parse_utc_text(entry.body["at"])
        if latest is not None and at < latest[0] - skew:
            found.append((entry, at, latest[0], latest[1]))
            continue
        if latest is None or at > latest[0]:
            latest = (at, entry.seq)
    return _runs(found)


def latest_after(
    chains: Mapping[str, Iterable[SealedEntry]], at: datetime
) -> tuple[str, SealedEntry] | None:
    """The latest-dated entry of any of ``chains`` (name → entries) dated after ``at``, if any.

    Rule: a decision (a release) comes after everything it decides on — no entry of the record
    or of its review is dated later than the decision's own time.
    """
    latest: tuple[str, SealedEntry, datetime] | None = None
    for name, entries in chains.items():
        for entry in entries:
            dated = parse_utc_text(entry.body["at"])
            if dated > at and (latest is None or dated >= latest[2]):  # ties: the last
                latest = (name, entry, dated)
    return (latest[0], latest[1]) if latest else None
