"""Units of measure a recipe may use: a closed list, so '°c' or 'mls' is caught at validation.

Each unit maps to its UN/CEFACT Recommendation 20 common code where one exists (used in the
B2MML export's UnitOfMeasure); the key is what authors write and operators read.
"""

from __future__ import annotations

UNITS: dict[str, str] = {
    # count and concentration of cells
    "cells": "cells",
    "cells/mL": "cells/mL",
    "cells/kg": "cells/kg",
    "×10^6 cells": "×10^6 cells",
    "×10^6 cells/mL": "×10^6 cells/mL",
    "×10^6 cells/kg": "×10^6 cells/kg",
    "×10^9 cells": "×10^9 cells",
    "%": "P1",
    "% v/v": "VP",
    "fold": "fold",
    # volume, mass, concentration
    "µL": "4G",
    "mL": "MLT",
    "L": "LTR",
    "µg": "MC",
    "mg": "MGM",
    "g": "GRM",
    "kg": "KGM",
    "mg/mL": "M1",
    "µg/mL": "µg/mL",
    "ng/mL": "ng/mL",
    "pg/mL": "pg/mL",
    "mmol/L": "M33",
    "mOsm/kg": "mOsm/kg",
    "IU/mL": "IU/mL",
    "EU/mL": "EU/mL",
    "EU/kg": "EU/kg",
    # vectors and molecular
    "TU/mL": "TU/mL",
    "TU/cell": "TU/cell",
    "copies/cell": "copies/cell",
    "nm": "C45",
    # physical conditions
    "°C": "CEL",
    "°C/min": "°C/min",
    "pH": "pH",
    "rpm": "RPM",
    "mbar": "MBR",
    "bar": "BAR",
    "kPa": "KPA",
    "psi": "PS",
    # time
    "s": "SEC",
    "min": "MIN",
    "h": "HUR",
    "d": "DAY",
    # discrete items
    "each": "EA",
    "vial": "vial",
    "bag": "bag",
    "kit": "kit",
    "set": "set",
    "label": "label",
}


def is_known_unit(unit: str) -> bool:
    """True when ``unit`` is on the closed list."""
    return unit in UNITS


def suggest_unit(unit: str) -> str | None:
    """The listed unit ``unit`` most likely meant (same letters ignoring case and spaces)."""
    squashed = unit.replace(" ", "").casefold()
    for known in UNITS:
        if known.replace(" ", "").casefold() == squashed:
            return known
    return None
