"""0010 badge + PIN: users' PINs and their history, enrolled badges, how a session first signed.

Upgrade: every user stays, with no PIN yet (the new columns are empty); the PIN history is
append-only; badges keep their rows (a revoked badge's code may be enrolled again, an active
one only once) and are never deleted; existing sessions stay, their signing method unknown.
Downgrade: PINs, badges and the session's signing method go (only this migration made them);
users are still never deleted.
"""

import helpers

OLIVIA = helpers.OLIVIA


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        assert {(r["pin_hash"], r["pin_changed_at"]) for r in self.db.rows("users")} == {
            (None, None)
        }
        assert [r["signed_with"] for r in self.db.rows("web_sessions")] == [None]
        self.db.accepts("pin_history", "badges")
        self.db.refuses_change("pin_history")
        self.db.refuses_delete("badges", "users")
        # A second active badge with the same code is refused (11.300(a): unique).
        self.db.refuses(
            "INSERT INTO badges (id, user_id, code_hash, hint, enrolled_at) "
            f"VALUES ('g-3', '{helpers.ADA}', '{'d' * 64}', '…0000', :at)",
            "(?i)unique",
            at=helpers.LATER,
        )
        self.db.refuses("UPDATE web_sessions SET signed_with = 'finger'", "known_signed_with")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not {"pin_hash", "pin_changed_at"} & self.db.columns("users")
        assert "signed_with" not in self.db.columns("web_sessions")
        assert not {"pin_history", "badges"} & self.db.tables()
        self.db.refuses_delete("users")
