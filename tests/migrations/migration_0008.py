"""0008 spoke clock: each spoke's clock offset as the hub last measured it, and when.

Upgrade: every spoke stays, its clock not yet measured (both new columns empty); they are
updated in place, and spokes are still never deleted. Downgrade: the measurements go (the next
signed request measures again); the spokes' other columns and their never-delete trigger stay.
"""

from datetime import UTC, datetime

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        measured = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
        spokes = self.db.rows("spokes")
        assert [(s["clock_offset_seconds"], s["clock_measured_at"]) for s in spokes] == [
            (None, None)
        ]
        self.db.execute(
            "UPDATE spokes SET clock_offset_seconds = 2.5, clock_measured_at = :at", at=measured
        )
        spoke = self.db.rows("spokes")[0]
        assert (spoke["clock_offset_seconds"], spoke["clock_measured_at"]) == (2.5, measured)
        self.db.refuses_delete("spokes")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not {"clock_offset_seconds", "clock_measured_at"} & self.db.columns("spokes")
        self.db.refuses_delete("spokes")
