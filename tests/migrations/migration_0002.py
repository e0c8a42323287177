"""0002 master recipes: recipe versions and their lifecycle, publications, installed bundles.

Upgrade: the foundation's rows stay; the new tables keep rows as written; a version out of
draft refuses a change of its content but not of its status; versions are never deleted;
publications and installed recipes are append-only. Downgrade: the three tables go with their
rows (they hold only what this migration introduced); the foundation's rows stay.
"""

import helpers

TABLES = ("recipe_versions", "recipe_publications", "installed_recipes")


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts(*TABLES)
        self.db.refuses("UPDATE recipe_versions SET compiled = '{}'", "immutable once out of draft")
        self.db.execute("UPDATE recipe_versions SET status = 'superseded'")
        self.db.refuses("DELETE FROM recipe_versions", "never deleted")
        self.db.refuses_change("recipe_publications", "installed_recipes")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not self.db.tables() & set(TABLES)
        self.db.refuses_change("audit_entries")
