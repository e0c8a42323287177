"""0003 batch execution: the batch ledger and its projections, materials and equipment.

Upgrade: the recipes' and the foundation's rows stay; the new tables keep rows as written; the
ledger and the equipment logbook are append-only; batches, their projections and the material,
lot and equipment masters are never deleted. Downgrade: the batch tables go with their rows
(they hold only what this migration introduced); the installed recipes stay append-only.
"""

import helpers

LEDGERS = ("batch_entries", "equipment_log")
NEVER_DELETED = ("batches", "batch_phases", "batch_values", "batch_materials", "batch_equipment",
                 "deviations", "materials", "material_lots", "equipment")  # fmt: skip


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts("counters", *LEDGERS, *NEVER_DELETED)
        self.db.refuses_change(*LEDGERS)
        self.db.refuses_delete(*NEVER_DELETED)


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not self.db.tables() & {"counters", *LEDGERS, *NEVER_DELETED}
        self.db.refuses_change("installed_recipes")
