"""0011 network read models: batch summaries, critical values and milestones at the hub.

Upgrade: the three projections start empty (``mes network rebuild`` fills them from the chains)
and keep rows as written; they are projections, so rows change and go (no append-only trigger);
their CHECKs refuse an unknown state, criticality or source. The sync log keeps its rows and
gains indexes. Downgrade: the three tables and the indexes go; every other row stays.
"""

import helpers

READ_MODELS = ("batch_summaries", "parameter_results", "batch_milestones")
INDEXES = {"ix_sync_events_action_outcome_peer_at", "ix_sync_events_outcome_id"}


def _sync_indexes(db: helpers.Db) -> set[str]:
    import sqlalchemy as sa

    return {i["name"] for i in sa.inspect(db.engine).get_indexes("sync_events")}


class UpgradeTester(helpers.UpgradeTester):
    def load_data(self) -> None:
        self.db.seed()

    def check_upgrade(self) -> None:
        self.db.accepts(*READ_MODELS)
        assert _sync_indexes(self.db) >= INDEXES
        # Projections: updated and deleted as the chains move (and by a rebuild).
        self.db.execute("UPDATE batch_summaries SET exceptions = 0, qa_state = 'awaiting_review'")
        self.db.execute("UPDATE parameter_results SET value = -1.4")
        self.db.execute("DELETE FROM batch_milestones WHERE milestone = 'up:thaw_up'")
        self.db.refuses("UPDATE batch_summaries SET qa_state = 'pending'", "known_qa_state")
        self.db.refuses("UPDATE batch_summaries SET exceptions = -1", "counts_not_negative")
        self.db.refuses("UPDATE parameter_results SET criticality = 'kpi'", "known_criticality")
        self.db.refuses("UPDATE batch_milestones SET source = 'guess'", "known_source")
        self.db.refuses(
            "INSERT INTO batch_milestones (batch_id, milestone, site, recipe_code, at, source) "
            "VALUES ('no-such-batch', 'receipt', 'SPK1', 'CAR-T', :at, 'recipe')",
            "(?i)foreign key",
            at=helpers.STAMP,
        )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not set(READ_MODELS) & self.db.tables()
        assert not INDEXES & _sync_indexes(self.db)
        assert [r["id"] for r in self.db.rows("sync_events")] == [1]
