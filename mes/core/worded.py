"""A vocabulary's members declared with the words people read, side by side.

``class LotStatus(Worded): RELEASED = "released", "released"`` declares the stored value and its
words together; :func:`words_of` gives the table (member → words) that web, CLI and PDF read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self, TypeVar


class Worded(StrEnum):
    """A StrEnum whose members are written ``NAME = "value", "words"`` (the value is stored)."""

    words: str

    def __new__(cls, value: str, words: str) -> Self:
        """A member stored as ``value`` and read as ``words``."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.words = words
        return member


W = TypeVar("W", bound=Worded)


def words_of(vocabulary: type[W]) -> dict[W, str]:
    """Each member's words, in the members' order."""
    return {member: member.words for member in vocabulary}
