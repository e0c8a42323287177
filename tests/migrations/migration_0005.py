"""0005 review: each batch's review chain (append-only) and its disposition.

Upgrade: the batches and every other row stay; the review tables keep rows as written; the
review chain refuses change and deletion; a disposition is only released or rejected.
Downgrade: the review tables go with their rows (only this migration made them); the batch
ledger stays append-only.
"""

import helpers

TABLES = ("batch_review_entries", "batch_reviews")


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts(*TABLES)
        self.db.refuses_change("batch_review_entries")
        self.db.refuses("UPDATE batch_reviews SET decision = 'approved'", "known_decision")
        self.db.execute("UPDATE batch_reviews SET decision = 'released'")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not self.db.tables() & set(TABLES)
        self.db.refuses_change("batch_entries")
