"""The recipe calculation language: arithmetic on recorded values, nothing else.

    total_viable = viable_conc * volume_ml
    vector_ml    = round(activation.cd3_cells * moi / titre, 2)

Grammar (a tokenizer and a recursive-descent parser; Python's ``eval`` is never used)::

    expression := term (('+' | '-') term)*
    term       := unary (('*' | '/') unary)*
    unary      := '-' unary | '+' unary | atom
    atom       := NUMBER | NAME | FUNCTION '(' expression (',' expression)* ')' | '(' expression ')'
    NAME       := input            (an input or calculation of the same phase)
                | phase.input      (a value recorded in an earlier phase)
    FUNCTION   := min | max | round

No attribute access beyond ``phase.input``, no other calls, no strings, no comparisons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from mes.core.errors import MesError

FUNCTIONS = ("min", "max", "round")
MAX_LENGTH = 500
MAX_DEPTH = 40
MAX_DECIMALS = 15  # a float has no more significant decimal digits
_WIDE = Context(prec=400)  # room for every digit of any float and MAX_DECIMALS more

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>[-+*/(),])
    """,
    re.VERBOSE,
)


class ExpressionError(MesError):
    """A calculation cannot be parsed or evaluated; ``position`` is 1-based in the text."""

    def __init__(self, message: str, position: int | None = None, what_to_do: str = "") -> None:
        self.position = position
        super().__init__(message, what_to_do=what_to_do)


@dataclass(frozen=True)
class Number:
    """A literal number."""

    value: float


@dataclass(frozen=True)
class Name:
    """A reference to a recorded value: ``input`` or ``phase.input``."""

    name: str
    position: int


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``+x``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """``a + b``, ``a - b``, ``a * b``, ``a / b``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """``min(...)``, ``max(...)`` or ``round(x, n)``."""

    function: str
    args: tuple[Node, ...]


Node = Number | Name | Unary | Binary | Call


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens = []
    index = 0
    while index < len(text):
        match = _TOKEN.match(text, index)
        if match is None:
            raise ExpressionError(
                f"unexpected character {text[index]!r} at position {index + 1}",
                index + 1,
                "Use numbers, value names, + - * / ( ) and min, max, round.",
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), index + 1))
        index = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def end_position(self) -> int:
        return len(self.text) + 1

    def take(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str, what: str) -> None:
        if not self.take(text):
            token = self.peek()
            where = token.position if token else self.end_position()
            found = f"{token.text!r}" if token else "the end"
            raise ExpressionError(f"expected {what} at position {where}, found {found}", where)

    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionError("the expression is empty", 1)
        node = self.expression()
        token = self.peek()
        if token is not None:
            raise ExpressionError(
                f"unexpected {token.text!r} at position {token.position}", token.position
            )
        return node

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            token = self.peek()
            raise ExpressionError(
                f"the expression nests deeper than {MAX_DEPTH} levels",
                token.position if token else self.end_position(),
                "Split it into several calculations.",
            )

    def expression(self) -> Node:
        return self.left_to_right(("+", "-"), self.term)

    def term(self) -> Node:
        return self.left_to_right(("*", "/"), self.unary)

    def left_to_right(self, operators: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        """Operands joined by ``operators`` of one precedence, grouped from the left."""
        node = operand()
        while (token := self.peek()) is not None and token.text in operators:
            self.index += 1
            node = Binary(token.text, node, operand())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.index += 1
            self.nested()
            node = Unary(token.text, self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise ExpressionError(
                f"the expression ends too early at position {self.end_position()}",
                self.end_position(),
            )
        self.index += 1
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value):
                raise ExpressionError(
                    f"the number {token.text} at position {token.position} is too large",
                    token.position,
                )
            return Number(value)
        if token.kind == "name":
            return self.name_or_call(token)
        if token.text == "(":
            self.nested()
            node = self.expression()
            self.expect(")", "')'")
            self.depth -= 1
            return node
        raise ExpressionError(
            f"unexpected {token.text!r} at position {token.position}", token.position
        )

    def name_or_call(self, token: _Token) -> Node:
        following = self.peek()
        if following is not None and following.text == "(":
            if token.text not in FUNCTIONS:
                raise ExpressionError(
                    f"'{token.text}' at position {token.position} is not an allowed function",
                    token.position,
                    "Only min, max and round may be called.",
                )
            self.index += 1
            self.nested()
            args = [self.expression()]
            while self.take(","):
                args.append(self.expression())
            self.expect(")", "')' or ','")
            self.depth -= 1
            return self.checked_call(token, tuple(args))
        if token.text in FUNCTIONS:
            raise ExpressionError(
                f"'{token.text}' at position {token.position} is a function: write {token.text}(...)",
                token.position,
            )
        if token.text.count(".") > 1:
            raise ExpressionError(
                f"'{token.text}' at position {token.position}: write a value as 'input' or "
                "'phase.input'",
                token.position,
            )
        return Name(token.text, token.position)

    @staticmethod
    def checked_call(token: _Token, args: tuple[Node, ...]) -> Call:
        if token.text == "round" and len(args) not in (1, 2):
            raise ExpressionError(
                f"round at position {token.position} takes a value and optionally the number "
                "of decimals",
                token.position,
            )
        if (
            token.text == "round"
            and len(args) == 2
            and not (
                isinstance(args[1], Number)
                and args[1].value.is_integer()
                and 0 <= args[1].value <= MAX_DECIMALS
            )
        ):
            raise ExpressionError(
                f"round at position {token.position}: the number of decimals must be a whole "
                f"number from 0 to {MAX_DECIMALS}",
                token.position,
            )
        if token.text in ("min", "max") and len(args) < 2:
            raise ExpressionError(
                f"{token.text} at position {token.position} needs at least two values",
                token.position,
            )
        return Call(token.text, args)


@dataclass(frozen=True)
class Expression:
    """A parsed calculation: its text, tree and the names of the values it reads."""

    text: str
    tree: Node

    @property
    def names(self) -> tuple[str, ...]:
        """Every value name referenced, in order of first use."""
        seen: dict[str, None] = {}
        stack: list[Node] = [self.tree]
        order: list[Name] = []
        while stack:
            node = stack.pop()
            if isinstance(node, Name):
                order.append(node)
            elif isinstance(node, Unary):
                stack.append(node.operand)
            elif isinstance(node, Binary):
                stack.extend((node.right, node.left))
            elif isinstance(node, Call):
                stack.extend(reversed(node.args))
        for name in sorted(order, key=lambda n: n.position):
            seen.setdefault(name.name, None)
        return tuple(seen)

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The value, given every referenced name; a missing value or 1/0 is an error."""
        result = _evaluate(self.tree, values)
        if not math.isfinite(result):
            raise ExpressionError(f"'{self.text}' does not give a finite number")
        return result


def parse(text: str) -> Expression:
    """Parse ``text`` or raise :class:`ExpressionError` saying where and what is wrong."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters", 1)
    return Expression(text, _Parser(text).parse())


def _evaluate(node: Node, values: Mapping[str, float]) -> float:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        if node.name not in values or values[node.name] is None:
            raise ExpressionError(f"no value recorded for '{node.name}'", node.position)
        try:
            return float(values[node.name])
        except (TypeError, ValueError, OverflowError):
            raise ExpressionError(
                f"the value recorded for '{node.name}' is not a number", node.position
            ) from None
    if isinstance(node, Unary):
        operand = _evaluate(node.operand, values)
        return -operand if node.op == "-" else operand
    if isinstance(node, Binary):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if right == 0:
            raise ExpressionError("division by zero")
        return left / right
    args = [_evaluate(arg, values) for arg in node.args]
    if node.function == "min":
        return min(args)
    if node.function == "max":
        return max(args)
    decimals = int(args[1]) if len(args) == 2 else 0
    return _round(args[0], decimals)


def round_half_up(value: float, decimals: int) -> float:
    """Round half away from zero to ``decimals`` places (see :func:`_round`)."""
    return _round(value, decimals)


def _round(value: float, decimals: int) -> float:
    """Round half away from zero on the number as written, as USP General Notices 7.20 does.

    round(2.5) is 3 and round(2.675, 2) is 2.68, where Python's ``round`` rounds half to even on
    the binary value (2 and 2.67).
    """
    if not math.isfinite(value):
        return value
    exact = Decimal(repr(value)).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP, context=_WIDE
    )
    return float(exact)
