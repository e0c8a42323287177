"""What is wrong with a recipe file: each problem with its line, column and path.

A problem reads ``file:line:col path: message``, e.g. ``car-t.yaml:118:17
unit_procedures[2].operations[0].phases[3].inputs[1]: action_low 80 is above alert_low 70``; a
warning reads ``… path: warning: message``. :class:`RecipeInvalid` refuses a file listing every
problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mes.core.errors import MesError

Path = tuple[str | int, ...]


def path_text(path: Path) -> str:
    """``('unit_procedures', 2, 'operations', 0)`` → ``unit_procedures[2].operations[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (part.isprintable() and _PLAIN_KEY.fullmatch(part)):
            text += f"[{shown(part)}]"  # a misspelt key with a space, dot or line break
        else:
            text += f".{part}" if text else part
    return text


_PLAIN_KEY = re.compile(r"[^\s.\[\]'\"]+")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a recipe file, where it is (1-based line and column) and what."""

    line: int
    column: int
    path: Path = field(compare=False)
    message: str = field(compare=False)
    warning: bool = field(default=False, compare=False)  # worth changing, but not refused

    def text(self, source_name: str) -> str:
        """``file:line:col path: message``, as editors and CI logs understand it.

        A warning reads ``file:line:col path: warning: message``.
        """
        where = f"{source_name}:{self.line}:{self.column}"
        path = path_text(self.path)
        message = f"warning: {self.message}" if self.warning else self.message
        return f"{where} {path}: {message}" if path else f"{where}: {message}"


class RecipeInvalid(MesError):
    """The recipe file breaks the format or its rules; ``problems`` lists every one."""

    http_status = 422

    def __init__(
        self, source_name: str, problems: list[Problem], warnings: Iterable[Problem] = ()
    ) -> None:
        self.source_name = source_name
        self.problems = sorted(problems)
        self.warnings = sorted(warnings)
        count = len(self.problems)
        super().__init__(
            f"{source_name} is not a valid recipe ({count} problem{'s' * (count != 1)}): "
            + "; ".join(p.text(source_name) for p in self.problems[:3])
            + ("; …" if count > 3 else ""),
            what_to_do="Correct every problem listed and validate again.",
        )

    def lines(self) -> list[str]:
        """One line per problem, in file order."""
        return [p.text(self.source_name) for p in self.problems]

    def warning_lines(self) -> list[str]:
        """One line per warning, in file order (shown with the problems, refusing nothing)."""
        return [w.text(self.source_name) for w in self.warnings]


def shown(value: Any) -> str:
    """``repr`` of a value from the file, cut short when long (a message is one line)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"
