"""0006 server sessions: one row per logged-in browser; the users' session generation goes.

Upgrade: every user's row stays but for the generation counter (sessions signed with the old
cookie end: their users log in again); session rows are session state, not GMP data, so they
are deleted freely, while users are still never deleted.
Downgrade: the sessions go (everyone logs in again) and every user's generation is back at 0,
which the old cookie check starts from; users are still never deleted.
"""

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        assert "session_generation" not in self.db.columns("users")
        self.db.accepts("web_sessions")
        self.db.execute("DELETE FROM web_sessions")
        assert self.db.rows("web_sessions") == []
        self.db.refuses_delete("users")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert [user["session_generation"] for user in self.db.rows("users")] == [0, 0]
        self.db.refuses_delete("users")
