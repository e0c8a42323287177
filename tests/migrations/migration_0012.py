"""0012 CPV governance: frozen baselines, equivalence margins, trends and QA's dispositions.

Upgrade: nothing before it changes; the four new tables keep representative rows and are
append-only; a margin of zero, an unknown disposition, a deviation without its reference and a
second trend for the same signal are refused. Downgrade: the four tables go (only this
migration made them); every other row stays.
"""

import helpers

TABLES = ("cpv_baselines", "cpv_margins", "cpv_trends", "cpv_dispositions")


class UpgradeTester(helpers.UpgradeTester):
    def check_upgrade(self) -> None:
        self.db.accepts(*TABLES)
        self.db.refuses_change(*TABLES)
        self.db.refuses(
            "INSERT INTO cpv_margins (id, recipe_code, parameter, unit, margin, set_at, set_by, "
            f"signature_seq, reason) VALUES ('cm-2', 'C', 'p.v', '', 0, :at, '{helpers.ADA}', 4, 'r')",
            "margin_positive",
            at=helpers.LATER,
        )
        self.db.refuses(
            "INSERT INTO cpv_trends (id, recipe_code, parameter, unit, scope, rule, direction, "
            "first_batch_id, last_batch_id, first_number, last_number, words, provisional, "
            "detected_at) SELECT 'ct-2', recipe_code, parameter, unit, scope, rule, direction, "
            "first_batch_id, last_batch_id, first_number, last_number, words, provisional, "
            "detected_at FROM cpv_trends WHERE id = 'ct-1'",
            "(?i)unique",
        )
        self.db.execute(
            "INSERT INTO cpv_trends (id, recipe_code, parameter, unit, scope, rule, direction, "
            "first_batch_id, last_batch_id, first_number, last_number, words, provisional, "
            "detected_at) SELECT 'ct-3', recipe_code, parameter, unit, 'network', rule, "
            "direction, first_batch_id, last_batch_id, first_number, last_number, words, "
            "provisional, detected_at FROM cpv_trends WHERE id = 'ct-1'"
        )
        for disposition, reference, words in (
            ("ignore", "'X'", "known_disposition"),
            ("deviation", "NULL", "reference_given"),
        ):
            self.db.refuses(
                "INSERT INTO cpv_dispositions (trend_id, disposition, reference, comment, "
                f"decided_at, decided_by, signature_seq) VALUES ('ct-3', '{disposition}', "
                f"{reference}, 'c', :at, '{helpers.ADA}', 5)",
                words,
                at=helpers.LATER,
            )


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        assert not set(TABLES) & self.db.tables()
