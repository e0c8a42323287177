"""The text people write into records: one-line names and free-text reasons.

ALCOA+ asks for records that are legible and complete, and 21 CFR 11.10(a)/(b) for accurate and
complete copies: what is recorded must read back, on every page and in the printed record,
exactly as it was typed, and nothing typed may be dropped.

* A **one-line text** — a title, a product, unit-procedure, operation or phase name, an input
  label, a user's full name, a lot number, a material or instrument name, a site or terminal
  name, every one-line field — holds no control character: nothing below U+0020 (so no line
  break, carriage return, form feed or tab), no U+007F, none of the C1 controls U+0080–U+009F,
  and neither U+2028 nor U+2029 (line and paragraph separators). A carriage return shown as a
  space on a page once ended a string in the printed record's style sheet; such characters
  have no business in a name.
* A **free text** — a comment, a reason, a description — may hold line breaks and tabs (a
  browser's CR LF becomes LF), nothing else of the above, and at most :data:`MAX_FREE_TEXT`
  characters unless the field says otherwise. A longer text is refused naming the limit, never
  cut short: a record that silently keeps part of what was typed is not complete.

Every layer asks this module: the recipe validator, the forms' validators and the services.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from mes.core.errors import InvalidInput

MAX_FREE_TEXT = 2000  # a comment, a reason, a recorded text value: about a page
MAX_LONG_TEXT = 4000  # QA's investigation: description, impact, root cause

# The characters a one-line text refuses; a free text refuses them too, except LF and TAB.
_C0 = frozenset(map(chr, range(0x20)))
_C1 = frozenset(map(chr, range(0x7F, 0xA0)))  # DEL and the C1 controls
CONTROL_CHARACTERS = _C0 | _C1 | {"\u2028", "\u2029"}
FREE_TEXT_BREAKS = frozenset("\n\t")

_NAMES = {
    "\n": "a line break",
    "\r": "a carriage return",
    "\t": "a tab",
    "\f": "a form feed",
    "\v": "a vertical tab",
    "\x00": "a NUL character",
    "\x85": "a next-line character",
    "\u2028": "a line separator",
    "\u2029": "a paragraph separator",
}


def character_name(char: str) -> str:
    """How a refused character is named in a message: 'a carriage return (U+000D)'."""
    return f"{_NAMES.get(char, 'a control character')} (U+{ord(char):04X})"


def _first_refused(text: str, allowed: frozenset[str]) -> tuple[int, str] | None:
    for position, char in enumerate(text):
        if char in CONTROL_CHARACTERS and char not in allowed:
            return position, char
    return None


def line_problem(text: str) -> str | None:
    """Why ``text`` is not one line of text (the first control character and where), or None."""
    found = _first_refused(text, frozenset())
    if found is None:
        return None
    position, char = found
    return f"contains {character_name(char)} at character {position + 1}: it must be one line"


def free_text_problem(text: str, max_length: int = MAX_FREE_TEXT) -> str | None:
    """Why ``text`` cannot be kept as free text (a control character, or too long), or None.

    Line breaks and tabs are allowed; ``text`` is taken as stored (CR LF already made LF).
    """
    found = _first_refused(text, FREE_TEXT_BREAKS)
    if found is not None:
        position, char = found
        return f"contains {character_name(char)} at character {position + 1}"
    if len(text) > max_length:
        return f"is {len(text):,} characters long; at most {max_length:,} are allowed"
    return None


def is_one_line(text: str) -> bool:
    """True when ``text`` holds no control character (see the module's docstring)."""
    return _first_refused(text, frozenset()) is None


def one_line(text: str | None, label: str, *, max_length: int | None = None) -> str:
    """``text`` without surrounding spaces, refused (:class:`InvalidInput`) unless one line.

    ``label`` names the field in the message (ALCOA+ legible: a name reads back as typed).
    """
    value = (text or "").strip()
    problem = line_problem(value)
    if problem is not None:
        raise InvalidInput(
            f"{label} {problem}.",
            what_to_do="Type it again on one line, without line breaks, tabs or control "
            "characters.",
        )
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(
            f"{label} is {len(value):,} characters long; at most {max_length:,} are allowed.",
            what_to_do=f"Shorten it to {max_length:,} characters or fewer.",
        )
    return value


def identifier(
    text: str | None,
    pattern: re.Pattern[str] | str,
    what: str,
    what_to_do: str,
    *,
    case: Callable[[str], str] | None = None,
) -> str:
    """``text`` without surrounding spaces (in ``case``, e.g. ``str.upper``) if it matches ``pattern``.

    Else :class:`InvalidInput` "'<text>' is not <what>.", the text quoted as it was typed.
    """
    value = (text or "").strip()
    value = case(value) if case is not None else value
    if not re.match(pattern, value):
        raise InvalidInput(f"'{text}' is not {what}.", what_to_do=what_to_do)
    return value


def first_few(texts: Sequence[str], most: int, sep: str = ", ", last: str = " and ") -> str:
    """The first ``most`` of ``texts`` joined by ``sep``, then how many more: "a, b and 3 more"."""
    shown = sep.join(texts[:most])
    return f"{shown}{last}{len(texts) - most} more" if len(texts) > most else shown


def whole_number(text: str | None, *, most: int = 10**9) -> int | None:
    """``text`` as a whole number from 0 to ``most`` written in ASCII digits, else None.

    ``str.isdigit()`` is not enough: it accepts ``²`` (which ``int()`` refuses) and 5,000
    digits (past ``int()``'s limit, and every database's integer).
    """
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    number = int(text)
    return number if number <= most else None


def free_text(text: str | None, label: str, *, max_length: int = MAX_FREE_TEXT) -> str:
    """``text`` as kept in the record (CR LF → LF, surrounding spaces removed), or refused.

    A text longer than ``max_length`` is refused naming the limit — never cut short (ALCOA+
    complete) — and so is one holding a control character other than a line break or a tab.
    """
    value = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    problem = free_text_problem(value, max_length)
    if problem is not None:
        raise InvalidInput(
            f"{label} {problem}.",
            what_to_do=f"Shorten it to {max_length:,} characters or fewer; nothing was saved."
            if len(value) > max_length
            else "Type it again without control characters.",
        )
    return value
