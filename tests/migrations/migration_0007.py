"""0007 refusal windows: refused anonymous attempts counted per source and window.

Upgrade: every row stays; the counter table keeps rows as written, and (not a GMP table) is
updated in place and deleted once summarised. Downgrade: the counters go (their summaries are
in the audit trail and the sync log already).
"""

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts("refusal_windows")
        self.db.execute("UPDATE refusal_windows SET refused = refused + 1")
        assert [window["refused"] for window in self.db.rows("refusal_windows")] == [5]
        self.db.execute("DELETE FROM refusal_windows")
        assert self.db.rows("refusal_windows") == []


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert "refusal_windows" not in self.db.tables()
