"""0013 the series index of parameter_results holds a chart's columns.

Upgrade: ``ix_parameter_results_parameter`` (recipe code, parameter, recorded at) becomes
``ix_parameter_results_series`` (… and the batch number; at PostgreSQL it INCLUDEs unit, site,
batch, value and recipe version); the rows stay. Downgrade: the former index is back.
"""

import helpers


def _indexes(db: helpers.Db) -> dict[str, list[str]]:
    import sqlalchemy as sa

    return {
        i["name"]: list(i["column_names"])
        for i in sa.inspect(db.engine).get_indexes("parameter_results")
    }


class UpgradeTester(helpers.UpgradeTester):
    def load_data(self) -> None:
        self.db.seed()

    def check_upgrade(self) -> None:
        found = _indexes(self.db)
        assert "ix_parameter_results_parameter" not in found
        assert found["ix_parameter_results_series"][:4] == [
            "recipe_code",
            "parameter",
            "recorded_at",
            "number",
        ]
        assert self.db.rows("parameter_results") == self.db.seeded("parameter_results")


class DowngradeTester(helpers.DowngradeTester):
    def check_downgrade(self) -> None:
        found = _indexes(self.db)
        assert "ix_parameter_results_series" not in found
        assert found["ix_parameter_results_parameter"] == [
            "recipe_code",
            "parameter",
            "recorded_at",
        ]
