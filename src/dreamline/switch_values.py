"""The forms a switch's value may take on the prompt line: whole numbers, decimal numbers and
variation lists.  Form only (is it a number?); ranges are checked once, by ``request.validate``.

Digits are ASCII: Python's ``\\d`` would also take '٣' or '３', which no other tool reading the
command (A1111, InvokeAI) would, so a printed command could not be pasted elsewhere.
"""

from __future__ import annotations

import math
import re

from dreamline.request import RequestError

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_int(raw: str, label: str, expected: str) -> int:
    """A whole number written in decimal ('5', '-1'); '5.0', '1e3' and '5_0' are refused.

    Raises RequestError naming ``label`` (the switch, '-s/--steps') and ``expected``.
    """
    if not _INT.fullmatch(raw):
        raise RequestError(f"{label}: {raw!r} is not a whole number; expected {expected}")
    return int(raw)


def parse_float(raw: str, label: str, expected: str) -> float:
    """A finite decimal number ('0.5', '.5', '7', '1e-05'); 'nan' and 'inf' are refused."""
    if not _FLOAT.fullmatch(raw):
        raise RequestError(f"{label}: {raw!r} is not a number; expected {expected}")
    value = float(raw)
    if math.isinf(value):  # '1e400' is written like a number but overflows
        raise RequestError(f"{label}: {raw!r} is too large to be a number here; expected "
                           f"{expected}")
    return value


def parse_variations(raw: str, label: str, expected: str) -> tuple[tuple[int, float], ...]:
    """'seed:weight,seed:weight' -> ((seed, weight), ...); spaces around items are allowed."""
    pairs: list[tuple[int, float]] = []
    for item in raw.split(","):
        seed_text, colon, weight_text = item.strip().partition(":")
        seed_text, weight_text = seed_text.strip(), weight_text.strip()
        if not colon or not _INT.fullmatch(seed_text) or not _FLOAT.fullmatch(weight_text):
            raise RequestError(f"{label}: {raw!r} is not a list of seed:weight pairs; "
                               f"expected {expected}")
        if math.isinf(float(weight_text)):
            raise RequestError(f"{label}: weight {weight_text!r} is too large to be a number "
                               f"here; expected {expected}")
        pairs.append((int(seed_text), float(weight_text)))
    return tuple(pairs)
