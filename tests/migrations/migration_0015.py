"""0015 logger files: temperature logger files as received, keyed by SHA-256, append-only.

Upgrade: a deviation's category takes 32 characters; a new, empty table that keeps a file's bytes exactly and refuses to change or delete
them (and a size beyond the accepted limit). Downgrade: the table goes (only this migration
made it); every other row stays.
"""

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.execute(
            "UPDATE deviations SET category = 'temperature_excursion'"
        )  # 21 characters: refused at PostgreSQL before 0015
        self.db.accepts("logger_files")
        self.db.refuses_change("logger_files")
        self.db.refuses(
            "INSERT INTO logger_files (sha256, size, content, received_at) "
            f"VALUES ('{'e' * 64}', 0, :content, :at)",
            "size_accepted",
            content=b"",
            at=helpers.LATER,
        )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert "logger_files" not in self.db.tables()
