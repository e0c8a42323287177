"""The layout and dependency direction of docs/architecture.md, held by tests rather than hoped for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is a test dependency: pip install -e '.[test]'"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_importing_the_core_loads_neither_flask_nor_sqlalchemy():
    probe = (
        "import sys, importlib, pkgutil, mes.core\n"
        "for m in pkgutil.iter_modules(mes.core.__path__): importlib.import_module('mes.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'flask', 'sqlalchemy', 'wtforms', 'flask_wtf', 'flask_login', 'weasyprint', 'alembic', 'psycopg'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_the_top_level_layout_is_as_the_architecture_says():
    for name in (
        "pyproject.toml",
        "README.md",
        "mes",
        "recipes",
        "migrations",
        "tests",
        "instance",
        "benchmarks",
        "docs",
    ):
        assert (ROOT / name).exists(), f"{name} is missing at the top level"
    for name in ("errors.py", "canonical.py", "ledger.py", "keys.py", "esign.py"):
        assert (ROOT / "mes" / "core" / name).is_file()
    for name in ("models", "engine", "uow", "queries"):
        store = ROOT / "mes" / "store"
        assert (store / f"{name}.py").is_file() or (store / name / "__init__.py").is_file(), name


def test_every_blueprint_keeps_views_forms_and_templates_in_the_same_places():
    web = ROOT / "mes" / "web"
    blueprints = [p for p in web.iterdir() if p.is_dir() and (p / "views.py").exists()]
    assert {p.name for p in blueprints} >= {"common", "admin"}
    for blueprint in blueprints:
        assert (blueprint / "forms.py").is_file(), blueprint
        assert (blueprint / "templates" / blueprint.name).is_dir(), blueprint


def test_ruff_finds_nothing_to_fix():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a test dependency"
    lint = subprocess.run(
        [ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert fmt.returncode == 0, fmt.stdout
