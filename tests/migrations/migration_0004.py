"""0004 sync: spokes and enrollment codes, nonces, the hub link, the outbox, the sync log, and a
token on each publication.

Upgrade: every batch recorded before waits in the outbox, unacknowledged, until the hub
acknowledges it; the publications made before have no token; the other rows stay. The sync log
is append-only; spokes and outbox marks are never deleted.
Downgrade: the sync tables and the publications' tokens go (only this migration made them);
the publications' other columns stay, and so do their append-only triggers (on SQLite the
downgrade used to copy the table, which dropped them: fixed in place).
"""

import helpers
from helpers import BATCH, BATCH_2

TABLES = ("spokes", "enrollment_codes", "sync_nonces", "hub_link", "sync_events")
WAITING = {"acked_seq": 0, "acked_hash": None, "pending": True, "priority": False,
           "state": "pending", "refusal": None, "refusal_code": None, "attempted_at": None,
           "acked_at": None}  # fmt: skip


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        assert self.db.rows("sync_outbox") == [
            {"batch_id": BATCH, "last_seq": 3, **WAITING},
            {"batch_id": BATCH_2, "last_seq": 1, **WAITING},
        ]
        assert [row["token"] for row in self.db.rows("recipe_publications")] == [None]
        self.db.accepts(*TABLES)
        self.db.refuses_change("sync_events", "recipe_publications")
        self.db.refuses_delete("spokes", "sync_outbox")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert "token" not in self.db.columns("recipe_publications")
        self.db.refuses_change("recipe_publications")
