"""0009 signed heads: a signature and time on each chain head, the hub's receipts and the
anchored (countersigned) heads.

Upgrade: every head recorded before stays, unsigned (the new columns are empty until the chain
moves on); the receipts and anchored heads keep rows as written and are append-only.
Downgrade: the head signatures, receipts and anchored heads go (only this migration made them);
the heads, batches and reviews stay with their triggers (on SQLite the downgrade used to copy
the three tables: it dropped their triggers, and failed once a batch had ledger entries, the
copy's DROP TABLE breaking the entries' foreign key; fixed by dropping the columns in place).
"""

import helpers

HEADS = (("chain_heads", "at", "signature"), ("batches", "head_at", "head_signature"),
         ("batch_reviews", "head_at", "head_signature"))  # fmt: skip


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        for table, at, signature in HEADS:
            assert {(row[at], row[signature]) for row in self.db.rows(table)} == {(None, None)}
        self.db.accepts("hub_receipts", "anchored_heads")
        self.db.refuses_change("hub_receipts", "anchored_heads")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        for table, at, signature in HEADS:
            assert not {at, signature} & self.db.columns(table)
        self.db.refuses_delete("chain_heads", "batches")
        self.db.refuses("UPDATE chain_heads SET last_seq = 0", "chain_heads")
