"""A1111's emphasis rules, read into weighted runs of text and written in dreamline's syntax.

A1111 (and its forks) read a prompt's emphasis like this (its wiki, "Attention/emphasis"):

* ``(text)`` multiplies the attention of ``text`` by 1.1, ``[text]`` divides it by 1.1, and
  ``(text:1.3)`` multiplies it by 1.3; nested groups multiply;
* ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the literal characters; any other backslash is
  dropped; a colon is text unless ``:weight)`` closes a group;
* a closing bracket without an opening one is text; an opening one never closed emphasises the
  rest of the prompt;
* neighbouring runs of equal weight merge, and an empty prompt is one empty run.

ComfyUI (and Fooocus, SwarmUI, which use its rules) have the parentheses only: ``[`` and ``]``
are text there (``square=False``).

``to_ours`` writes runs in dreamline's prompt syntax: a run of weight 1 as plain text, any other
as ``(text:weight)`` (which dreamline hands to compel as ``(text)weight``); literal parentheses
as ``\\(`` ``\\)``.  dreamline's ``[...]`` is the negative prompt, so a literal square bracket
cannot be written: it becomes a space and is returned as lost.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

EMPHASIS = 1.1
_WEIGHT_CLOSE = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
# A run of + or - after a word: compel's emphasis in dreamline, so a space goes before it.
_SUFFIX = re.compile(r"(?<=\S)(?<![+-])([+-]+)(?=[\s,.;)]|$)")
_SIGN = re.compile(r"(?<![^\s,.;])[+-]+(?=[\s,.;)]|$)")


class Run(NamedTuple):
    """A stretch of literal text and its attention weight."""

    text: str
    weight: float


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse(text: str, *, square: bool = True) -> list[Run]:
    """``text``'s runs by A1111's emphasis rules (see the module docstring)."""
    runs: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1:index + 2]
            escaped = bool(following) and following in "()\\" + ("[]" if square else "")
            if escaped:
                runs.append([following, 1.0])
            index += 2 if escaped else 1
            continue
        if char == ":" and round_open:
            found = _WEIGHT_CLOSE.match(text, index)
            weight = _number(found.group(1)) if found else None
            if found is not None and weight is not None:
                scale(round_open.pop(), weight)
                index = found.end()
                continue
        if char == "(":
            round_open.append(len(runs))
        elif char == "[" and square:
            square_open.append(len(runs))
        elif char == ")" and round_open:
            scale(round_open.pop(), EMPHASIS)
        elif char == "]" and square and square_open:
            scale(square_open.pop(), 1 / EMPHASIS)
        else:
            runs.append([char, 1.0])
        index += 1
    for start in round_open:
        scale(start, EMPHASIS)
    for start in square_open:
        scale(start, 1 / EMPHASIS)
    return _merge(runs)


def _merge(runs: list[list[Any]]) -> list[Run]:
    """Neighbouring runs of equal weight as one; [Run("", 1.0)] for none."""
    merged: list[Run] = []
    for piece, weight in runs:
        if merged and merged[-1].weight == weight:
            merged[-1] = Run(merged[-1].text + piece, weight)
        else:
            merged.append(Run(piece, weight))
    return merged or [Run("", 1.0)]


def weight_text(weight: float) -> str:
    """A weight as written in a prompt: 1.1, 1.21, 0.9091 (four decimals at most)."""
    return f"{round(weight, 4):g}"


def _literal(text: str, lost: list[str]) -> str:
    """Literal text in dreamline's syntax: parentheses escaped, +/- runs after a word spaced
    off (compel would read ``word+`` as emphasis; CLIP splits them off all the same)."""
    if "[" in text or "]" in text:
        lost.append("literal [ ] (dreamline's [...] is the negative prompt)")
        text = text.replace("[", " ").replace("]", " ")
    if "\\" in text:
        lost.append("literal \\")
        text = text.replace("\\", " ")
    text = text.replace("(", "\\(").replace(")", "\\)")
    return _SUFFIX.sub(r" \1", text)


def to_ours(runs: list[Run], lost: list[str]) -> str:
    """Runs in dreamline's prompt syntax; what cannot be written goes into ``lost``."""
    out: list[str] = []
    after_group = False
    for run in runs:
        text = _literal(run.text, lost)
        if after_group and (text[:1] in ("+", "-", ".") or text[:1].isdigit()):
            text = " " + text  # "(x:1.2)5" would read as compel's weight 5
        if weight_text(run.weight) == "1" or not text.strip():
            out.append(text)
            after_group = False
            continue
        if _SIGN.search(text):  # compel reads no +/- of its own inside a weighted group
            lost.append("+/- inside emphasis")
            text = _SIGN.sub("", text)
        stripped = text.strip()
        lead = text[:len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        out.append(f"{lead}({stripped}:{weight_text(run.weight)}){trail}")
        after_group = not trail
    return "".join(out)


def translate(text: str, lost: list[str], *, square: bool = True) -> str:
    """A1111 (``square``) or ComfyUI emphasis in ``text`` rewritten in dreamline's syntax."""
    return to_ours(parse(text, square=square), lost)
