"""Counted nouns for messages: "1 step", "2 steps" (never "1 steps")."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (``plural`` or noun + "s")."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"
