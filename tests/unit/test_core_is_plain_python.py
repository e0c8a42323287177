"""The domain imports nothing of the web or the database (ARCHITECTURE: dependency direction)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_core_loads_neither_flask_nor_sqlalchemy():
    code = (
        "import sys, pkgutil, importlib, mes.core\n"
        "for m in pkgutil.iter_modules(mes.core.__path__):\n"
        "    importlib.import_module('mes.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'flask', 'sqlalchemy', 'alembic', 'psycopg', 'wtforms', 'weasyprint'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
