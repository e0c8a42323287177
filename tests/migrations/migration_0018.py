"""0018 look-back: what each batch used (a read model) and the look-backs QA opened.

Upgrade: nothing before it changes; ``batch_usages`` keeps representative rows (a lot, an
instrument, a signer, a recipe version) and refuses an unknown kind; ``lookbacks`` keeps its
rows and is append-only. Downgrade: both tables go (only this migration made them); every other
row stays.
"""

import helpers

TABLES = ("batch_usages", "lookbacks")


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts(*TABLES)
        self.db.refuses_change("lookbacks")
        self.db.refuses(
            "INSERT INTO batch_usages (batch_id, kind, identifier, site) "
            f"VALUES ('{helpers.BATCH}', 'room', 'R-1', 'SPK1')",
            "known_kind",
        )
        self.db.refuses(
            "INSERT INTO batch_usages (batch_id, kind, identifier, site) "
            f"VALUES ('{helpers.BATCH}', 'lot', 'L-Ø42', 'SPK1')",
            "(?i)unique|duplicate",
        )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not set(TABLES) & self.db.tables()
