"""0014 after release: the QC role, and released batches whose review still grows.

Upgrade: a user may hold the role "qc"; every disposition row gains ``after_release`` (NULL:
nothing awaited; "event" or "provisional"). Downgrade: QC grants go (only this revision knows the role), the column goes.
"""

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def load_data(self) -> None:
        self.db.seed()

    def check_upgrade(self) -> None:
        assert [r["after_release"] for r in self.db.rows("batch_reviews")] == [None]
        self.db.execute("UPDATE batch_reviews SET after_release = 'event'")
        self.db.refuses("UPDATE batch_reviews SET after_release = 'maybe'", "known_after_release")
        self.db.execute(f"INSERT INTO user_roles (user_id, role) VALUES ('{helpers.OLIVIA}', 'qc')")
        self.db.refuses(
            f"INSERT INTO user_roles (user_id, role) VALUES ('{helpers.OLIVIA}', 'chemist')",
            "known_role",
        )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert "after_release" not in self.db.columns("batch_reviews")
        self.db.refuses(
            f"INSERT INTO user_roles (user_id, role) VALUES ('{helpers.OLIVIA}', 'qc')",
            "known_role",
        )
