"""The machinery of the per-migration tests (SecureDrop's ``tests/migrations/`` is the model).

Each migration ``NNNN`` has a module ``migration_NNNN.py`` with two classes:

- ``UpgradeTester``: ``load_data()`` runs at the previous revision, then the migration is applied
  and ``check_upgrade()`` runs. Before it, :func:`run_upgrade` has already checked that every
  row loaded is still there, unchanged in every column that the migration kept.
- ``DowngradeTester``: ``load_data()`` runs at the migration's revision, then the migration is
  undone and ``check_downgrade()`` runs. Before it, :func:`run_downgrade` has already checked that
  the schema is exactly the previous revision's (tables, columns, keys, indexes, CHECK constraints,
  triggers and, on PostgreSQL, trigger functions) and that the rows of the tables that remain are
  unchanged in the columns that remain.

The models describe only the newest schema, so rows are written with plain SQL through tables
reflected from the database as it is at that revision. :data:`SEED` holds representative rows for
every table of every revision (each with the union of the columns the table ever had);
:meth:`Db.seed` writes those of the tables and columns present.

A new migration ``NNNN``: add rows for its new tables (and values for its new columns) to
:data:`SEED`, and write ``migration_NNNN.py`` — its two classes, with only the checks that are
its own (``test_migrations.py`` finds the module by the revision, and fails while it is missing).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from mes.store.engine import make_engine
from mes.store.migrate import alembic_config

AT = datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=UTC)  # microseconds survive too
LATER = datetime(2026, 11, 22, 17, 30, 5, tzinfo=UTC)
STAMP = "2026-11-21T09:00:00.123456Z"  # the chains keep their times as text
HASH = "a" * 64
SIGNATURE = "s" * 86
ADA, OLIVIA = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"
RECIPE, INSTALLED = "00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"
BATCH, BATCH_2 = "00000000-0000-4000-8000-0000000000c1", "00000000-0000-4000-8000-0000000000c2"
TERMINAL = "00000000-0000-4000-8000-0000000000d1"

# Representative rows, parents before children. A column a table no longer has (or does not
# have yet) is left out when the rows are written. Values include NULLs, non-ASCII text,
# nested JSON, dates, times with microseconds and booleans.
SEED: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    ("users", tuple(
        {"id": uid, "username": name, "full_name": full, "password_hash": "$argon2id$" + name,
         "password_changed_at": AT, "must_change_password": must, "failed_attempts": failed,
         "locked": False, "active": True, "attested_at": attested, "session_generation": 3,
         "created_at": AT, "pin_hash": "$argon2id$pin-" + name, "pin_changed_at": LATER}
        for uid, name, full, must, failed, attested in (
            (ADA, "ada", "Ada Lovelace", False, 0, LATER),
            (OLIVIA, "olivia", "Olivia Østergård", True, 2, None),
        )
    )),
    ("user_roles", ({"user_id": ADA, "role": "admin"}, {"user_id": OLIVIA, "role": "operator"},
                    {"user_id": OLIVIA, "role": "supervisor"})),
    ("password_history", ({"id": 1, "user_id": OLIVIA, "password_hash": "$argon2id$old",
                           "set_at": AT},)),
    ("terminals", ({"id": TERMINAL, "site": "SPK1", "name": "Bench 1", "location": "Suite B",
                    "active": True, "registered_at": AT, "registered_by": ADA},)),
    ("training_records", ({"id": "t-1", "user_id": OLIVIA, "procedure": "SOP-CT-014 Aseptic gowning",
                           "qualified_on": date(2026, 1, 5), "expires_on": date(2027, 1, 5),
                           "withdrawn": False, "recorded_at": AT, "recorded_by": ADA},)),
    ("audit_entries", tuple(
        {"seq": seq, "prev": prev, "at": STAMP, "site": "SPK1", "terminal": None,
         "actor_id": ADA, "actor_username": "ada", "actor_name": "Ada Lovelace", "kind": kind,
         "action": action, "record_type": "user", "record_id": OLIVIA, "old": old,
         "new": {"roles": ["operator", "supervisor"], "name": "Olivia Østergård"},
         "reason": reason, "hash": digest, "signature": SIGNATURE}
        for seq, prev, digest, kind, action, old, reason in (
            (1, "0" * 64, "1" * 64, "change", "user added", None, None),
            (2, "1" * 64, "2" * 64, "signature", "signed: approved", {"roles": []}, "réason"),
        )
    )),
    ("chain_heads", ({"chain": "audit", "last_seq": 2, "last_hash": "2" * 64, "at": STAMP,
                      "signature": SIGNATURE},)),
    ("recipe_versions", ({
        "id": RECIPE, "recipe_code": "CAR-T", "version": 1, "title": "CAR-T fresh",
        "product_code": "P-1", "product_name": "Cells", "modality": "autologous",
        "change_reason": "first", "content_hash": HASH, "compiled": '{"phases": []}',
        "source_name": "car-t.yaml", "source_text": "code: CAR-T\n", "status": "effective",
        "created_at": AT, "created_by": ADA, "authored_by": ADA, "reviewed_by": OLIVIA,
        "approved_by": ADA, "effective_from": date(2026, 11, 22), "status_changed_at": LATER,
        "status_reason": None},)),
    ("recipe_publications", ({"id": "p-1", "version_id": RECIPE, "sites": ["SPK1", "SPK2"],
                              "bundle_hash": "b" * 64, "published_at": AT, "published_by": ADA,
                              "token": "eyJ0b2tlbiI6IDF9"},)),
    ("installed_recipes", ({
        "id": INSTALLED, "recipe_code": "CAR-T", "version": 1, "title": "CAR-T fresh",
        "content_hash": HASH, "compiled": '{"phases": []}', "effective_from": date(2026, 11, 22),
        "bundle": "{}", "bundle_hash": "b" * 64, "hub_key_id": "k" * 64, "issued_at": STAMP,
        "installed_at": AT, "installed_by": ADA},)),
    ("counters", ({"name": "batch:2026", "value": 2},)),
    ("equipment", ({"id": "BSC-01", "equipment_class": "biosafety_cabinet", "name": "BSC 1",
                    "location": "Suite B", "status": "in_service", "clean": True,
                    "calibration_due": date(2027, 3, 1), "created_at": AT},)),
    ("materials", ({"code": "M-IL2", "name": "IL-2", "unit": "µg", "created_at": AT},)),
    ("equipment_log", ({"id": 1, "equipment_id": "BSC-01", "at": AT, "action": "cleaned",
                        "batch_number": None, "phase_id": None, "by_username": "olivia",
                        "by_name": "Olivia Østergård", "detail": "70 % IPA"},)),
    ("material_lots", ({"id": "l-1", "lot_number": "LOT-7", "material_code": "M-IL2",
                        "expiry": date(2027, 6, 30), "status": "released", "received_at": AT,
                        "status_changed_at": LATER, "status_reason": "CoA checked"},)),
    ("batches", tuple(
        {"id": bid, "number": number, "site": "SPK1", "recipe_code": "CAR-T",
         "recipe_version": 1, "content_hash": HASH, "installed_recipe_id": INSTALLED,
         "chain_of_identity": {"patient": "PT-0042", "din": ["W1234", 5]}, "status": status,
         "status_reason": None, "created_at": STAMP, "created_by": "olivia",
         "started_at": started, "completed_at": None, "last_seq": last_seq,
         "last_hash": str(last_seq) * 64, "head_at": STAMP, "head_signature": SIGNATURE}
        for bid, number, status, started, last_seq in (
            (BATCH, "SPK1-2026-0001", "in_progress", STAMP, 3),
            (BATCH_2, "SPK1-2026-0002", "created", None, 1),
        )
    )),
    ("batch_entries", tuple(
        {"batch_id": BATCH, "seq": seq, "prev": str(seq - 1) * 64, "at": STAMP, "site": "SPK1",
         "terminal": "Bench 1", "actor_id": OLIVIA, "actor_username": "olivia",
         "actor_name": "Olivia Østergård", "kind": kind, "payload": payload,
         "hash": str(seq) * 64, "signature": SIGNATURE}
        for seq, kind, payload in (
            (1, "batch_created", {"number": "SPK1-2026-0001"}),
            (2, "phase_started", {"phase": "thaw"}),
            (3, "values_recorded", {"values": {"temp": "-1.5"}, "unit": "°C"}),
        )
    )),
    ("batch_phases", ({
        "batch_id": BATCH, "phase_id": "thaw", "position": 1, "name": "Thaw", "status":
        "in_progress", "started_at": STAMP, "performed_at": None, "performed_by": None,
        "verified_at": None, "verified_by": None, "needs_verification": True,
        "earliest_start": None, "latest_start": STAMP, "corrections": 0, "current": True,
        "last_seq": 3},)),
    ("batch_values", ({"batch_id": BATCH, "phase_id": "thaw", "value_id": "temp",
                       "value": "-1.5", "status": "alert", "entry_seq": 3, "recorded_at": STAMP,
                       "recorded_by": "olivia", "corrections": 1},)),
    ("batch_materials", ({"batch_id": BATCH, "phase_id": "thaw", "material_code": "M-IL2",
                          "lot_number": "LOT-7", "quantity": "12.50", "unit": "µg",
                          "entry_seq": 3},)),
    ("batch_equipment", ({"batch_id": BATCH, "phase_id": "thaw", "slot": 0,
                          "equipment_id": "BSC-01", "entry_seq": 2, "in_use": True},)),
    ("deviations", ({"id": BATCH + "/1", "batch_id": BATCH, "number": 1, "phase_id": "thaw",
                     "value_id": "temp", "category": "alert", "description": "Temp −1.5 °C",
                     "comment": None, "status": "open", "raised_at": STAMP,
                     "raised_by": "olivia", "acknowledged_at": None, "acknowledged_by": None,
                     "entry_seq": 3},)),
    ("spokes", ({"code": "SPK1", "name": "Spoke 1", "time_zone": "Europe/London",
                 "status": "active", "public_key_pem": "-----BEGIN PUBLIC KEY-----",
                 "key_id": "k" * 64, "created_at": AT, "created_by": ADA, "enrolled_at": LATER,
                 "status_changed_at": LATER, "status_reason": None, "last_seen_at": LATER,
                 "clock_offset_seconds": -1.25, "clock_measured_at": LATER},)),
    ("enrollment_codes", ({"id": "e-1", "spoke_code": "SPK1", "code_hash": "c" * 64,
                           "created_at": AT, "created_by": ADA, "expires_at": LATER,
                           "used_at": LATER},)),
    ("sync_nonces", ({"site": "SPK1", "nonce": "n" * 32, "seen_at": AT},)),
    ("hub_link", ({"id": 1, "hub_url": "https://hub.example", "hub_code": "HUB",
                   "hub_key_id": "h" * 64, "enrolled_at": AT},)),
    ("sync_outbox", ({"batch_id": BATCH, "last_seq": 3, "acked_seq": 2, "acked_hash": "2" * 64,
                      "pending": True, "priority": False, "state": "pending", "refusal": None,
                      "refusal_code": None, "attempted_at": LATER, "acked_at": LATER},
                     {"batch_id": BATCH_2, "last_seq": 1, "acked_seq": 0, "acked_hash": None,
                      "pending": False, "priority": True, "state": "refused",
                      "refusal": "clock ahead", "refusal_code": "clock", "attempted_at": LATER,
                      "acked_at": None})),
    ("sync_events", ({"id": 1, "at": AT, "action": "push", "peer": "HUB", "via": "https",
                      "batch_id": BATCH, "item": None, "first_seq": 1, "last_seq": 3,
                      "stored": 3, "duplicates": 0, "outcome": "accepted", "code": None,
                      "reason": None},)),
    ("batch_review_entries", ({
        "batch_id": BATCH, "seq": 1, "prev": "0" * 64, "at": STAMP, "site": "HUB",
        "terminal": None, "actor_id": ADA, "actor_username": "ada", "actor_name": "Ada Lovelace",
        "kind": "review_opened", "payload": {"batch": "SPK1-2026-0001"}, "hash": "r" * 64,
        "signature": SIGNATURE},)),
    ("batch_reviews", ({"batch_id": BATCH, "decision": None, "decided_at": None,
                        "decided_by": None, "reason": None, "last_seq": 1, "last_hash": "r" * 64,
                        "head_at": STAMP, "head_signature": SIGNATURE},)),
    ("web_sessions", ({"id_hash": "w" * 64, "user_id": OLIVIA, "terminal": "Bench 1",
                       "terminal_id": TERMINAL, "created_at": AT, "last_seen_at": LATER,
                       "locked": False, "signed": True, "signed_with": "badge_pin"},)),
    ("refusal_windows", ({"attempt": "login", "source": "192.0.2.7", "started": AT,
                          "refused": 4, "turned_away": 1, "reasons": {"password": 3, "lock": 1}},)),
    ("hub_receipts", ({"batch_id": BATCH, "last_seq": 3, "last_hash": "3" * 64, "hub": "HUB",
                       "nonce": "n" * 64, "signature": SIGNATURE, "received_at": STAMP},)),
    ("anchored_heads", ({"id": 1, "chain": "audit", "seq": 2, "hash": "2" * 64, "at": STAMP,
                         "signature": SIGNATURE, "countersigned_by": "HUB",
                         "countersigned_at": STAMP, "countersignature": SIGNATURE,
                         "kept_at": STAMP},)),
    ("pin_history", ({"id": 1, "user_id": OLIVIA, "pin_hash": "$argon2id$pin-old",
                      "set_at": AT},)),
    ("badges", ({"id": "g-1", "user_id": OLIVIA, "code_hash": "d" * 64, "hint": "…7Ø42",
                 "enrolled_at": AT, "enrolled_by": ADA, "revoked_at": LATER,
                 "revoke_reason": "lost in the changing room"},
                {"id": "g-2", "user_id": OLIVIA, "code_hash": "d" * 64, "hint": "…7Ø42",
                 "enrolled_at": LATER, "enrolled_by": None, "revoked_at": None,
                 "revoke_reason": None})),
    ("batch_summaries", ({
        "batch_id": BATCH, "site": "SPK1", "number": "SPK1-2026-0001", "recipe_code": "CAR-T",
        "recipe_version": 1, "status": "in_progress", "qa_state": "at_spoke",
        "current_phase": "Thaw — Zellen", "next_timer_at": STAMP, "open_deviations": 1,
        "exceptions": 2, "blocking": False, "newest_entry_at": STAMP, "received_at": STAMP,
        "created_at": STAMP, "started_at": STAMP, "completed_at": None, "decided_at": None,
        "demo": True, "review_digest": "0123456789abcdef"},)),
    ("parameter_results", ({
        "batch_id": BATCH, "phase_id": "thaw", "value_id": "temp", "site": "SPK1",
        "recipe_code": "CAR-T", "recipe_version": 1, "number": "SPK1-2026-0001",
        "parameter": "thaw.temp", "label": "Température", "unit": "°C", "criticality": "cpp",
        "value": -1.5, "recorded_at": STAMP, "corrected_at": None, "entry_seq": 3,
        "entry_hash": "e" * 64, "demo": True},)),
    ("batch_milestones", tuple(
        {"batch_id": BATCH, "milestone": name, "site": "SPK1", "recipe_code": "CAR-T",
         "at": STAMP, "source": source}
        for name, source in (("collection_end", "recipe"), ("manufacturing_start", "event"),
                             ("up:thaw_up", "event"))
    )),
    ("cpv_baselines", ({"id": "cb-1", "recipe_code": "CART-CD19", "parameter": "harvest.viability",
                        "unit": "%", "period_from": date(2026, 1, 1),
                        "period_to": date(2026, 6, 30), "batches": 20,
                        "first_number": "SPK1-2026-0001", "last_number": "SPK1-2026-0020",
                        "centre": 91.5, "sigma": 1.25, "lcl": 87.75, "ucl": 95.25,
                        "mr_centre": 1.41, "mr_ucl": 4.6, "frozen_at": LATER, "frozen_by": ADA,
                        "signature_seq": 1, "reason": "PPQ batches and the first 14 — Ø"},)),
    ("cpv_margins", ({"id": "cm-1", "recipe_code": "CART-CD19", "parameter": "harvest.viability",
                      "unit": "", "margin": 2.0, "set_at": LATER, "set_by": ADA,
                      "signature_seq": 2, "reason": "±1.5 sigma of the reference sites"},)),
    ("cpv_trends", ({"id": "ct-1", "recipe_code": "CART-CD19", "parameter": "harvest.viability",
                     "unit": "%", "scope": "SPK1", "rule": "nine_one_side", "direction": "below",
                     "first_batch_id": BATCH, "last_batch_id": BATCH_2,
                     "first_number": "SPK1-2026-0001", "last_number": "SPK1-2026-0009",
                     "words": "SPK1: 9 batches in a row below the centre line", "provisional": True,
                     "baseline_id": "cb-1", "detected_at": LATER},)),
    ("cpv_dispositions", ({"trend_id": "ct-1", "disposition": "capa", "reference": "CAPA-2026-7",
                           "comment": "New lot of IL-2; see the CAPA.", "decided_at": LATER,
                           "decided_by": OLIVIA, "signature_seq": 3},)),
    ("logger_files", ({"sha256": "f" * 64, "size": 46, "received_at": LATER,
                       "content": b"time,temperature_c\n2026-12-05T08:00:00Z,4.5\n\xc2\xb0"},)),
    ("batch_usages", tuple(
        {"batch_id": BATCH, "kind": kind, "identifier": ident, "detail": detail, "site": "SPK1"}
        for kind, ident, detail in (("instrument", "CNT-01", None), ("lot", "L-Ø42", "MAT-IL2"),
                                    ("operator", "olivia", "Olivia Ørsted"),
                                    ("recipe_version", "CAR-T v1", None))
    )),
    ("lookbacks", ({"id": "lb-1", "subject_kind": "lot", "subject": "L-Ø42",
                    "reason": "Supplier recall of IL-2 lot L-Ø42 — endotoxin", "opened_at": LATER,
                    "opened_by": OLIVIA},)),
)  # fmt: skip

APPEND_ONLY = "is append-only"
NEVER_DELETED = "never deleted"


def _normal(value: Any) -> Any:
    """A value as read back, comparable across drivers (SQLite keeps no time zone)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


class Db:
    """A database at whatever revision it is, read and written with plain SQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def tables(self) -> set[str]:
        """The tables (without Alembic's own)."""
        return set(sa.inspect(self.engine).get_table_names()) - {"alembic_version"}

    def columns(self, table: str) -> set[str]:
        """The names of ``table``'s columns."""
        return {c["name"] for c in sa.inspect(self.engine).get_columns(table)}

    def _reflect(self) -> sa.MetaData:
        """Every table as it is now (one reflection for all: per table it is slow)."""
        metadata = sa.MetaData()
        metadata.reflect(self.engine)
        return metadata

    def seed(self, *only: str) -> None:
        """Write :data:`SEED`'s rows into every table present (or only into ``only``), each in
        the columns the table has at this revision."""
        tables = self._reflect().tables
        with self.engine.begin() as conn:
            for name, seeded in SEED:
                if name in tables and (not only or name in only):
                    table = tables[name]
                    conn.execute(
                        table.insert(),
                        [{k: v for k, v in r.items() if k in table.c} for r in seeded],
                    )

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table``, in primary key order, its values normalised."""
        return self.dump()[table]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table, in primary key order, its values normalised."""
        dumped = {}
        with self.engine.connect() as conn:
            for name, table in self._reflect().tables.items():
                if name == "alembic_version":
                    continue
                order = list(table.primary_key.columns) or list(table.c)
                found = conn.execute(sa.select(table).order_by(*order)).mappings().all()
                dumped[name] = [{k: _normal(v) for k, v in row.items()} for row in found]
        return dumped

    def seeded(self, table: str) -> list[dict[str, Any]]:
        """:data:`SEED`'s rows of ``table`` as they read back (in the columns it has now)."""
        columns = self.columns(table)
        rows = dict(SEED)[table]
        return [{k: _normal(v) for k, v in row.items() if k in columns} for row in rows]

    def accepts(self, *tables: str) -> None:
        """New tables are empty, and keep representative rows exactly as written."""
        assert {t: self.rows(t) for t in tables} == {t: [] for t in tables}
        self.seed(*tables)
        assert {t: self.rows(t) for t in tables} == {t: self.seeded(t) for t in tables}

    def execute(self, sql: str, **params: Any) -> None:
        """Run one statement in its own transaction."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def refuses(self, sql: str, words: str, **params: Any) -> None:
        """``sql`` is refused by the database with a message containing ``words``."""
        with pytest.raises(sa.exc.DatabaseError, match=words):
            self.execute(sql, **params)

    def refuses_change(self, *tables: str) -> None:
        """Append-only tables (with rows) refuse to change or delete them."""
        for table in tables:
            column = min(self.columns(table))
            self.refuses(f"UPDATE {table} SET {column} = {column}", f"{table} {APPEND_ONLY}")
            self.refuses(f"DELETE FROM {table}", f"{table} {APPEND_ONLY}")

    def refuses_delete(self, *tables: str) -> None:
        """Tables (with rows) whose rows are never deleted refuse to delete them."""
        for table in tables:
            self.refuses(f"DELETE FROM {table}", f"{table} rows are never deleted")

    def triggers(self) -> set[tuple[str, str]]:
        """(table, trigger) of every trigger, and on PostgreSQL ("function", name) of ours."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                query = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
                return {(t, n) for t, n in conn.execute(sa.text(query))}
            triggers = conn.execute(
                sa.text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                )
            )
            functions = conn.execute(
                sa.text(
                    "SELECT 'function', p.proname FROM pg_proc p JOIN pg_namespace n "
                    "ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                )
            )
            return {(t, n) for t, n in triggers} | {(f, n) for f, n in functions}

    def schema(self) -> dict[str, Any]:
        """Everything a downgrade must restore, comparable between two databases."""
        inspector = sa.inspect(self.engine)
        # A set of columns, not a list: a column added back by ALTER TABLE comes last.
        parts = {
            "columns": lambda cs: {(c["name"], str(c["type"]), c["nullable"]) for c in cs},
            "primary key": lambda pk: pk["constrained_columns"],
            "foreign keys": lambda fks: {(fk["name"], tuple(fk["constrained_columns"]),
                                          fk["referred_table"], tuple(fk["referred_columns"]))
                                         for fk in fks},
            "indexes": lambda ixs: {(i["name"], tuple(i["column_names"]), i["unique"])
                                    for i in ixs},
            "unique": lambda us: {(u["name"], tuple(u["column_names"])) for u in us},
            "checks": lambda cks: {(c["name"], " ".join(c["sqltext"].split())) for c in cks},
        }  # fmt: skip
        reads = {
            "columns": inspector.get_multi_columns,
            "primary key": inspector.get_multi_pk_constraint,
            "foreign keys": inspector.get_multi_foreign_keys,
            "indexes": inspector.get_multi_indexes,
            "unique": inspector.get_multi_unique_constraints,
            "checks": inspector.get_multi_check_constraints,
        }
        schema: dict[str, Any] = {"triggers": self.triggers()}
        for part, read in reads.items():
            for (_schema, table), found in read().items():
                if table != "alembic_version":
                    schema.setdefault(table, {})[part] = parts[part](found)
        return schema


def assert_same_schema(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """``actual`` is ``expected``; a difference is named by its table and part."""
    assert sorted(actual) == sorted(expected), "other tables"
    lost, extra = (
        expected["triggers"] - actual["triggers"],
        actual["triggers"] - expected["triggers"],
    )
    assert not lost and not extra, f"triggers lost: {sorted(lost)}, added: {sorted(extra)}"
    for table in expected.keys() - {"triggers"}:
        for part, value in expected[table].items():
            assert actual[table][part] == value, f"{table}: other {part}"


def assert_rows_kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> None:
    """Every row of ``before`` is in ``after`` unchanged, in the columns both have."""
    for table in before.keys() & after.keys():
        had = before[table][0].keys() if before[table] else set()
        kept = had & after[table][0].keys() if after[table] else had
        old = [{c: row[c] for c in kept} for row in before[table]]
        new = [{c: row[c] for c in kept} for row in after[table]]
        assert new == old, f"the rows of {table} changed"


class Tester:
    """Loads :data:`SEED`'s rows (override ``load_data`` for others) into ``db``."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def load_data(self) -> None:
        self.db.seed()


class UpgradeTester(Tester):
    """``load_data`` runs at the previous revision, ``check_upgrade`` after the migration."""

    def check_upgrade(self) -> None:
        """The checks of this migration beyond "every row is still there"."""


class DowngradeTester(Tester):
    """``load_data`` runs at the migration's revision, ``check_downgrade`` after its downgrade."""

    def check_downgrade(self) -> None:
        """The checks of this migration beyond "the previous schema, every row still there"."""


def _revisions() -> dict[str, str | None]:
    """Each migration's revision → the one before it (None for the first), oldest first."""
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    return {r.revision: r.down_revision for r in reversed(list(script.walk_revisions()))}


PREVIOUS = _revisions()
REVISIONS = list(PREVIOUS)


def module_of(revision: str) -> ModuleType:
    """The tester module of ``revision``: ``tests/migrations/migration_<revision>.py``."""
    return importlib.import_module(f"migration_{revision}")


DatabaseAt = Callable[[str | None], sa.Engine]  # a new database at a revision (None: empty)


def run_upgrade(database_at: DatabaseAt, revision: str) -> None:
    """Load rows at the previous revision, upgrade: the rows are kept, and the module's checks."""
    engine = database_at(PREVIOUS[revision])
    db = Db(engine)
    tester = module_of(revision).UpgradeTester(db)
    tester.load_data()
    before = db.dump()
    command.upgrade(alembic_config(engine), revision)
    assert_rows_kept(before, db.dump())
    tester.check_upgrade()


def run_downgrade(database_at: DatabaseAt, revision: str) -> None:
    """Upgrade, load rows, downgrade: the previous schema is back and the rows with it, and the
    module's checks; then the migration applies again, to the same schema as the first time."""
    engine = database_at(PREVIOUS[revision])
    db, previous = Db(engine), PREVIOUS[revision] or "base"
    expected = db.schema()
    command.upgrade(alembic_config(engine), revision)
    upgraded = db.schema()
    tester = module_of(revision).DowngradeTester(db)
    tester.load_data()
    before = db.dump()
    command.downgrade(alembic_config(engine), previous)
    assert_same_schema(db.schema(), expected)
    assert_rows_kept(before, db.dump())
    tester.check_downgrade()
    command.upgrade(alembic_config(engine), revision)
    assert_same_schema(db.schema(), upgraded)
