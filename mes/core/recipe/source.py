"""A recipe's YAML read into plain data, with where each value is written.

Safe YAML only: no anchors, aliases or merge keys, no tags beyond the plain ones, ``1e9`` read as
a number (YAML 1.2), duplicate keys refused, bounded size and depth. Whatever cannot be read is a
:class:`~mes.core.recipe.problems.Problem` at its position, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mes.core.recipe.problems import Path, Problem, shown

MAX_SOURCE_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64


class _Repeated(Exception):
    """An anchor or an alias: refused where it is written, before anything is repeated."""

    def __init__(self, event: yaml.Event) -> None:
        self.position = (event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            what = f"the alias *{event.anchor}"
        else:
            what = f"the anchor &{event.anchor}"
        self.message = (
            f"{what}: anchors and aliases are not allowed in a recipe; write each value out "
            "where it is used"
        )


class _NoRepeats(yaml.composer.Composer):
    """Composes the document refusing anchors and aliases (``&name``, ``*name``).

    A recipe needs neither, and an alias repeats a part of the document without its size
    showing in the file (a 517-byte file of nested aliases and merge keys expanded to gigabytes
    in older PyYAML releases). The refusal names the anchor or alias and where it is written.
    """

    depth = 0  # of the node being composed (the document's root is 1)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Repeated(event)
        if self.depth > MAX_DEPTH:  # refused here, before Python's recursion limit is reached
            raise _TooLarge((event.start_mark.line + 1, event.start_mark.column + 1))
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(_NoRepeats, yaml.SafeLoader):
    """Safe YAML without anchors or aliases; reads ``1e9`` as a number (YAML 1.2)."""


if yaml.__with_libyaml__:

    class _CLoader(_NoRepeats, yaml.CSafeLoader):
        """The same on libyaml's C parser: about seven times faster.

        The nodes are composed in Python (libyaml's composer would accept aliases); a file it
        refuses is read again with the Python parser, whose messages are the ones we explain.
        """

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            yaml.composer.Composer.__init__(self)


_FastLoader: type[yaml.SafeLoader] = _CLoader if yaml.__with_libyaml__ else _Loader  # type: ignore[assignment]

for _loader in {_Loader, _FastLoader}:
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


@dataclass
class Positions:
    """Where each value (and each mapping key) of the document starts, by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The nearest known position of ``path`` (its key's, when asked and known)."""
        if key and path in self.keys:
            return self.keys[path]
        probe = path
        while probe not in self.values and probe:
            probe = probe[:-1]
        return self.values.get(probe, (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions and duplicate keys."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.positions = Positions()
        self.problems: list[Problem] = []
        self.count = 0

    def build(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise _TooLarge(_mark(node))
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path) -> Any:
        """The value of a scalar; a value PyYAML cannot build (a 13th month) is a problem here."""
        try:
            # Most scalars are plain text (every key): taken as is, skipping the constructor.
            value = (
                node.value if node.tag == _STR else self.loader.construct_object(node, deep=True)
            )
        except (ValueError, TypeError, OverflowError) as error:
            self.problems.append(Problem(*_mark(node), path, f"unreadable value: {error}"))
            return str(node.value)
        if isinstance(value, str) and not _is_unicode(value):
            self.problems.append(
                Problem(
                    *_mark(node),
                    path,
                    "the text contains an unpaired surrogate (an escape such as \\ud800), "
                    "which is not a valid character",
                )
            )
            return _printable(value)
        return value

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        # Merge keys (``<<``) are refused, never expanded (no ``flatten_mapping``).
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.problems.append(
                    Problem(
                        *_mark(key_node),
                        path,
                        "merge keys (<<) are not allowed in a recipe; write the fields out",
                    )
                )
                continue
            key = self.build_key(key_node, path)
            if key is None:
                continue
            key_path = (*path, key)
            if key in result:
                line, _ = self.positions.keys[key_path]
                self.problems.append(
                    Problem(
                        *_mark(key_node),
                        key_path,
                        f"duplicate key {shown(key)} (first given on line {line})",
                    )
                )
                continue
            self.positions.keys[key_path] = _mark(key_node)
            result[key] = self.build(value_node, key_path, depth + 1)
        return result

    def build_key(self, key_node: yaml.Node, path: Path) -> str | None:
        key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
        if isinstance(key, str):
            return key
        shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
        self.problems.append(
            Problem(
                *_mark(key_node),
                path,
                f"key {shown!r} is not text: keys must be names such as 'inputs' or 'viability'",
            )
        )
        return None


def _is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (from a YAML escape), which JSON cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _TooLarge(Exception):
    def __init__(self, position: tuple[int, int]) -> None:
        self.position = position


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _yaml_problem(error: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(error, yaml.reader.ReaderError):
        # A character YAML forbids (NUL, other control characters): no mark, an offset.
        breaks = list(_LINE_BREAK.finditer(source, 0, error.position))
        line = len(breaks) + 1
        column = error.position - (breaks[-1].end() if breaks else 0) + 1
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    text = f"{context}, {problem}" if context else str(problem)
    return Problem(line, column, (), f"not valid YAML: {text}")


def parse_yaml(text: str | bytes, *, fast: bool = True) -> tuple[Any, Positions, list[Problem]]:
    """Parse one YAML document into data + positions; problems instead of exceptions.

    ``fast`` uses libyaml's parser when PyYAML has it; whatever it refuses is parsed again with
    the Python parser, so problems are always described the same way.
    """
    if fast and _FastLoader is not _Loader:
        parsed = _parse(text, _FastLoader)
        if parsed[0] is not None and not parsed[2]:
            return parsed
    return _parse(text, _Loader)


def _parse(
    text: str | bytes, loader_class: type[yaml.SafeLoader]
) -> tuple[Any, Positions, list[Problem]]:
    if isinstance(text, bytes):
        if len(text) > MAX_SOURCE_BYTES:
            return None, Positions(), [_too_big()]
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            line = text.count(b"\n", 0, error.start) + 1
            start_of_line = text.rfind(b"\n", 0, error.start) + 1
            column = len(text[start_of_line : error.start].decode("utf-8", "replace")) + 1
            return (
                None,
                Positions(),
                [Problem(line, column, (), f"the file is not UTF-8 text (byte {error.start + 1})")],
            )
    if len(text) > MAX_SOURCE_BYTES:
        return None, Positions(), [_too_big()]
    try:
        loader = loader_class(text)
    except yaml.YAMLError as error:
        return None, Positions(), [_yaml_problem(error, text)]
    builder = _Builder(loader)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, builder.positions, [Problem(1, 1, (), "the file is empty")]
        data = builder.build(node, ())
    except yaml.YAMLError as error:
        return None, builder.positions, [_yaml_problem(error, text)]
    except _Repeated as refusal:
        return None, builder.positions, [Problem(*refusal.position, (), refusal.message)]
    except _TooLarge as error:
        return (
            None,
            builder.positions,
            [
                Problem(
                    *error.position,
                    (),
                    "the document is too large or nested too deeply "
                    f"(over {MAX_NODES} values or {MAX_DEPTH} levels)",
                )
            ],
        )
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # PyYAML's constructors raise these for values such as a timestamp out of range.
        return None, builder.positions, [Problem(1, 1, (), f"unreadable value: {error}")]
    finally:
        loader.dispose()
    return data, builder.positions, builder.problems


def _too_big() -> Problem:
    return Problem(1, 1, (), f"the file is larger than {MAX_SOURCE_BYTES // 1000} kB")
