"""0017 the clinician role.

Upgrade: a user may hold ``clinician``; an unknown role is still refused; the rows stay.
Downgrade: the former list of roles is back (refused while someone holds the role).
"""

import helpers


class UpgradeTester(helpers.UpgradeTester):
    def load_data(self) -> None:
        self.db.seed()

    def check_upgrade(self) -> None:
        assert self.db.rows("user_roles") == self.db.seeded("user_roles")
        self.db.refuses("UPDATE user_roles SET role = 'nurse'", "known_role")
        self.db.execute(
            f"INSERT INTO user_roles (user_id, role) VALUES ('{helpers.ADA}', 'clinician')"
        )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        self.db.refuses("UPDATE user_roles SET role = 'clinician'", "known_role")
