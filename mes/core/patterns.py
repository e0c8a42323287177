r"""Recipe patterns: the form a chain-of-identity identifier or a text/barcode value must have.

A recipe's ``pattern`` is a regular expression written by a recipe author and run on every scan
at a spoke. Python's ``re`` backtracks: ``^([A-Z0-9]+-?)*$`` took 18.7 s on a 26-character
mis-scan, and a few such requests hold every server thread. Recipe patterns are therefore
compiled and matched by RE2 (``google-re2``), whose time grows linearly with the text whatever
the pattern. RE2 has no backreferences and no look-ahead or look-behind (they cannot be matched
in linear time), writes the very end of the text ``\z`` (Python's ``\Z``), and its ``\d``,
``\w``, ``\s`` and ``\b`` are ASCII. The validator refuses a pattern RE2 cannot compile
(:func:`pattern_problem`), so an approved recipe only holds patterns that can be matched.

A value has the expected form when the pattern is found in it (a *search*, as with ``re.search``):
anchor the pattern with ``^`` and ``$`` to ask for the whole value.
"""

from __future__ import annotations

from functools import lru_cache

import re2

from mes.core.errors import InvalidInput

# Constructs RE2 refuses that authors used to Python or PCRE write, with what to write instead.
_HINTS = (
    ("\\Z", "write \\z (or $) for the end of the text"),
    ("(?=", "look-ahead cannot be matched in linear time; describe the form without it"),
    ("(?!", "look-ahead cannot be matched in linear time; describe the form without it"),
    ("(?<=", "look-behind cannot be matched in linear time; describe the form without it"),
    ("(?<!", "look-behind cannot be matched in linear time; describe the form without it"),
    ("(?x", "verbose mode is not supported; write the pattern without spaces or comments"),
)


class PatternInvalid(InvalidInput):
    """A recipe pattern RE2 cannot compile: a syntax error, or a backreference or look-around.

    Backreferences and look-around cannot be matched in linear time.
    """

    http_status = 422


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the refusal says what is wrong; RE2 need not print it too
    return options


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re2._Regexp:
    """The pattern compiled by RE2 (linear-time matching), or :class:`PatternInvalid` saying why.

    Compiled patterns are kept (a recipe has a few; each scan reuses its compiled form).
    """
    try:
        return re2.compile(pattern, _options())
    except re2.error as error:
        reason = error.args[0] if error.args else error
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        hints = [hint for construct, hint in _HINTS if construct in pattern]
        if "invalid escape sequence: \\" in text and text[-1:].isdigit():
            hints.append("backreferences cannot be matched in linear time")
        raise PatternInvalid(
            f"pattern {pattern!r} is not a valid RE2 regular expression: {text}"
            + (f" ({'; '.join(hints)})" if hints else ""),
            what_to_do="Write it in RE2 syntax: no backreferences, no look-around.",
        ) from None


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (one line), or None when it can be used in a recipe."""
    try:
        compile_pattern(pattern)
    except PatternInvalid as refusal:
        return refusal.message
    return None


def has_form(pattern: str, text: str) -> bool:
    """Whether ``text`` has the form ``pattern`` describes: the pattern is found in it (search).

    Matched by RE2 in time linear in the text, whatever the pattern (see the module's
    docstring); raises :class:`PatternInvalid` for a pattern RE2 cannot compile.
    """
    return compile_pattern(pattern).search(text) is not None
