"""The docs stand alone: every repository path that README.md and docs/*.md name exists.

A path is named in a Markdown link target or in a code span (`…`) outside fenced code blocks
(those hold commands and usage lines). What counts as a path, so that words and commands do not:

- a link target that is not a URL or an anchor;
- a code span without spaces (``mes demo`` is a command), without ``://`` (a URL), not starting
  with ``/`` (a page of the application, ``/qa/batches/<id>``) or ``-`` (an option), that either
  starts with ``./`` or ``../``, or whose first part is a top-level entry of the repository
  (``mes/core/ledger.py``, ``tests/``, ``.ci/run``, ``README.md``), or that has a folder and a
  source or document suffix (``scripts/setup.sh``), or is a bare Markdown file name
  (``sync.md``, looked for beside the doc and at the top level).

Units (``cells/mL``), schema names (``BatchInformation/MasterRecipe``) and the files a running
site writes into its instance folder (``instance/audit-checkpoints.jsonl``, ``keys/…``, ``mes.toml``)
are not repository paths. ``file.py::name`` names ``file.py``. Code spans are relative to the
top of the repository unless they start with ``./`` or ``../``; links and those are relative to
the doc, and none may lead outside the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".json", ".html", ".js", ".css", ".sh")
RUNTIME_FOLDERS = ("instance/",)  # a running site's own files (.gitignore: /instance/*)
NOT_ENTRIES = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@dataclass(frozen=True)
class Named:
    """A path a doc names: where (doc and line), the text, and the file it leads to."""

    doc: str
    line: int
    text: str
    target: Path

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def top_level() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.name not in NOT_ENTRIES}


def path_in_span(span: str, top: set[str]) -> str | None:
    """The repository path a code span names, or None when it is not one."""
    text = span.strip().split("::", 1)[0].rstrip(".,;:")
    if not text or any(c.isspace() for c in text) or "://" in text:
        return None
    if text.startswith(("/", "-", "<", "~", "$")) or text.startswith(RUNTIME_FOLDERS):
        return None
    if text.startswith(("./", "../")):
        return text
    first = text.split("/", 1)[0]
    if "/" in text and first in top:
        return text
    if "/" not in text:
        return text if text in top or text.endswith(".md") else None
    return text if text.endswith(SOURCE_SUFFIXES) else None


def path_in_link(target: str) -> str | None:
    """The repository path a link target names, or None (a URL, an anchor, a mail address)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
        return None
    return target.split("#", 1)[0] or None


def named_paths(doc: Path, text: str | None = None) -> list[Named]:
    """Every repository path ``doc`` names, with its line and the file it leads to."""
    top = top_level()
    found = []
    fenced = False
    name = doc.relative_to(ROOT).as_posix() if doc.is_relative_to(ROOT) else doc.name
    lines = (doc.read_text(encoding="utf-8") if text is None else text).splitlines()
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        for match in LINK_TARGET.finditer(line):
            path = path_in_link(match[1])
            if path is not None:
                found.append(Named(name, number, match[1], (doc.parent / path).resolve()))
        for match in CODE_SPAN.finditer(line):
            path = path_in_span(match[1], top)
            if path is None:
                continue
            beside = path.startswith(("./", "../")) or (
                "/" not in path and path.endswith(".md") and (doc.parent / path).exists()
            )
            target = ((doc.parent if beside else ROOT) / path).resolve()
            found.append(Named(name, number, match[1], target))
    return found


def exists(target: Path) -> bool:
    """The file exists; a pattern (``*``, or a placeholder such as ``<kind>``) matches one."""
    relative = re.sub(r"<[^<>/]+>", "*", target.relative_to(ROOT).as_posix())
    if any(c in relative for c in "*?["):
        return any(ROOT.glob(relative))
    return target.exists()


def test_no_doc_points_outside_the_repository():
    outside = [
        f"{named} leads outside the repository"
        for doc in docs()
        for named in named_paths(doc)
        if not named.target.is_relative_to(ROOT)
    ]
    assert not outside, "\n".join(outside)


def test_every_repository_path_the_docs_name_exists():
    missing = [
        f"{named} does not exist (looked for {named.target.relative_to(ROOT)})"
        for doc in docs()
        for named in named_paths(doc)
        if named.target.is_relative_to(ROOT) and not exists(named.target)
    ]
    assert not missing, "\n".join(missing)


def test_paths_are_told_from_commands_urls_pages_units_and_a_sites_own_files():
    text = "\n".join(
        [
            "Run `mes demo` or `bash .ci/run`; see [the docs](https://example.org/a/b.md).",
            "The hub serves `/recipes/schema.json` and `/qa/batches/<id>`; `--hub-key FILE.pem`.",
            "Units `cells/mL` and `°C/min`; BatchML `BatchInformation/MasterRecipe`.",
            "A site writes `instance/audit-checkpoints.jsonl`, `keys/site_ed25519.pem`, `mes.toml`.",
            "```sh",
            "python3 -m pip install -e . && mes demo --dir `nowhere/at/all.py`",
            "```",
            "Code: `mes/core/ledger.py::seal`, `tests/`, `.ci/run`, [x](../README.md#top).",
            "Gone: `mes/web/operator/record.py`, `scripts/setup.sh`, `ARCHITECTURE.md`.",
            "Outside: `../../shared/ARCHITECTURE.md`, [y](../../shared/DOMAIN.md).",
        ]
    )
    named = named_paths(ROOT / "docs" / "example.md", text)
    assert [(n.line, n.text) for n in named] == [
        (8, "../README.md#top"),
        (8, "mes/core/ledger.py::seal"),
        (8, "tests/"),
        (8, ".ci/run"),
        (9, "mes/web/operator/record.py"),
        (9, "scripts/setup.sh"),
        (9, "ARCHITECTURE.md"),
        (10, "../../shared/DOMAIN.md"),
        (10, "../../shared/ARCHITECTURE.md"),
    ]
    assert [exists(n.target) for n in named[:4]] == [True] * 4
    assert [exists(n.target) for n in named[4:7]] == [False] * 3
    assert [n.target.is_relative_to(ROOT) for n in named[7:]] == [False, False]
