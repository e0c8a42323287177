"""0001 foundation: users, roles, password history, training, terminals and the audit chain.

It comes first, so there are no rows to keep: the upgrade makes the tables, which keep
representative rows as written, and the database itself refuses to change or delete GMP
records. The downgrade returns to an empty database; by design it drops every table and its
rows (everything in it was made by this migration). It refuses nothing: ``mes`` offers no
downgrade, which is a developer's tool on a copy, never run on a site's records.
"""

import helpers

TABLES = ("users", "user_roles", "password_history", "terminals", "training_records",
          "audit_entries", "chain_heads")  # fmt: skip


class UpgradeTester(helpers.UpgradeTester):
    def load_data(self) -> None:
        assert self.db.tables() == set()

    def check_upgrade(self) -> None:
        self.db.accepts(*TABLES)
        self.db.refuses_change("audit_entries", "password_history", "training_records")
        self.db.refuses_delete("users", "terminals", "chain_heads")
        self.db.refuses("UPDATE chain_heads SET last_seq = 1", "chain_heads")
        self.db.execute("UPDATE chain_heads SET last_seq = 3")  # a head only moves forward


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert self.db.tables() == set()
        assert self.db.triggers() == set()
