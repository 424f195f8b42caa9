"""Wording for messages: counted nouns ("1 step", "2 steps", never "1 steps") and text cut
to fit one line."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (``plural`` or noun + "s")."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"


def shortened(text: str, limit: int = 40) -> str:
    """``text``, or its first ``limit`` - 3 characters and "..." when it is longer."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
