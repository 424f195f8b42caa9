"""Attention-weighting syntax: A1111's emphasis translated into compel's, and ``BREAK``.

Torch-free, so the parser and metadata code can use it.  compel (InvokeAI's prompt library)
understands InvokeAI's later syntax: ``word+``, ``word--``, ``(a few words)1.3``,
``("a", "b").blend(0.7, 0.3)`` and ``("a", "b").and()``.  A1111 writes emphasis differently;
``to_compel`` rewrites it so compel can encode it:

* ``(word)`` -> ``(word)1.1``, ``((word))`` -> ``(word)1.21`` (one group with the product
  of the weights, as A1111 weighs it; compel would multiply nested groups the same way);
* ``(word:1.3)`` -> ``(word)1.3``;
* a group already followed by compel's weight (``(a cat)1.3``, ``(cat)++``) or by a method
  (``("a", "b").blend(...)``) is left as it is;
* ``\\(`` and ``\\)`` stay literal parentheses, and so does an unmatched one (escaped for compel).

``split_breaks`` cuts a prompt at A1111's ``BREAK`` (upper case, a word of its own): each piece
starts a new 75-token chunk.  ``[negative]`` words and ``text:weight`` sub-prompts are
dreamline.prompts' job and are taken out before this module sees the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: A weight as A1111 and compel write it: a plain decimal (no exponent).
DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
#: What compel accepts right after a closing parenthesis: a weight, +/- runs, or a method call.
_COMPEL_AFTER_GROUP = re.compile(r"(?:[+-]+(?![\w])|[+-]?\d|\.\d|\.[A-Za-z_]\w*\()")
#: A1111's ``(text:weight)``: the weight ends the group.
_A1111_WEIGHT = re.compile(rf"^(?P<text>.*?):\s*(?P<weight>{DECIMAL})\s*$", re.DOTALL)
#: A group that is a compel method's argument list: ``.blend(`` / ``.and(``.
_METHOD_BEFORE = re.compile(r"\.[A-Za-z_]\w*$")
_BREAK = re.compile(r"(?<![\w\\])BREAK(?!\w)")
#: The emphasis of one pair of A1111 parentheses.
A1111_EMPHASIS = 1.1


def split_breaks(text: str) -> list[str]:
    """The pieces of ``text`` between ``BREAK`` words, stripped; never an empty list.

    Empty pieces (``BREAK`` at either end, or twice in a row) are dropped unless every piece is
    empty, so ``"BREAK"`` alone is one empty prompt.
    """
    pieces = [piece.strip() for piece in _BREAK.split(text)]
    kept = [piece for piece in pieces if piece]
    return kept if kept else [""]


def _pairs(text: str) -> tuple[dict[int, int], set[int]]:
    """Matching unescaped parentheses (open index -> close index) and the unmatched ones."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    unmatched: set[int] = set()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            stack.append(index)
        elif char == ")":
            if stack:
                pairs[stack.pop()] = index
            else:
                unmatched.add(index)
        index += 1
    unmatched.update(stack)
    return pairs, unmatched


def unmatched_parentheses(text: str) -> set[int]:
    """Indexes of the unescaped '(' and ')' of ``text`` that have no partner (read as text)."""
    return _pairs(text)[1]


def group_pairs(text: str) -> dict[int, int]:
    """Each matched unescaped '(' of ``text`` (index) -> its ')' (index)."""
    return _pairs(text)[0]


def to_compel(text: str) -> str:
    """``text`` with A1111 emphasis rewritten in compel's syntax (see the module docstring).

    Text without parentheses comes back unchanged.
    """
    if "(" not in text and ")" not in text:
        return text
    pairs, unmatched = _pairs(text)
    return _translate(text, 0, len(text), pairs, unmatched)


def _translate(text: str, start: int, end: int, pairs: dict[int, int],
               unmatched: set[int]) -> str:
    out: list[str] = []
    index = start
    while index < end:
        char = text[index]
        if char == "\\":
            out.append(text[index:index + 2])
            index += 2
            continue
        if index in unmatched:
            out.append("\\" + char)
            index += 1
            continue
        if char == "(" and index in pairs:
            close = pairs[index]
            inner = _translate(text, index + 1, close, pairs, unmatched)
            if (_METHOD_BEFORE.search(text, 0, index)
                    or _COMPEL_AFTER_GROUP.match(text, close + 1)):
                out.append(f"({inner})")  # compel's own syntax
            elif not inner.strip():
                out.append("\\(" + inner + "\\)")  # "()" is not emphasis of anything
            else:
                weighted = _A1111_WEIGHT.match(inner)
                if weighted is not None and weighted.group("text").strip():
                    body, weight = weighted.group("text").strip(), float(weighted.group("weight"))
                else:
                    body, weight = inner, A1111_EMPHASIS
                out.append(_weighted_group(body, weight))
            index = close + 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


#: A translated group and its weight, the whole of a text: ``(words)1.1``.
_ONE_GROUP = re.compile(rf"^\((?P<body>.*)\)(?P<weight>{DECIMAL})$", re.DOTALL)


def _weighted_group(body: str, weight: float) -> str:
    """``(body)weight`` in compel's syntax; when ``body`` is itself just one weighted group
    (A1111's ``((cat))``), one group with the product of the weights instead of two nested, as
    compel multiplies them anyway: compel's parser takes about twice as long per nesting level,
    so ``((((((((((cat))))))))))`` took seconds nested and takes no time flat."""
    found = _ONE_GROUP.match(body.strip())
    if found is not None and _pairs(found.group(0))[0].get(0) == len(found.group("body")) + 1:
        weight *= float(found.group("weight"))
        body = found.group("body")
    return f"({body}){weight:.12g}"


#: compel's weight after a group: a number, or a run of + / - (1.1 / 0.9 each).
_GROUP_WEIGHT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)|\++|-+")
#: compel's +/- after a word: the run, then a space, punctuation, ")" or the end.
_WORD_WEIGHT = re.compile(r"(\++|-+)(?=[\s,.;)]|$)")
_METHOD_CALL = re.compile(r"\.(?:blend|and|swap)\(", re.IGNORECASE)


def _sign_weight(run: str) -> float:
    return (1.1 if run[0] == "+" else 0.9) ** len(run)


def weighted_runs(text: str) -> list[tuple[str, float]] | None:
    """``text`` (one sub-prompt or the negative, in dreamline's syntax) as runs of literal
    text and their weights, as compel weighs them (A1111 emphasis included, via ``to_compel``);
    None when it uses compel's ``.blend()``/``.and()``/``.swap()``, which have no runs."""
    if _METHOD_CALL.search(text):
        return None
    return compel_runs(to_compel(text))


def compel_runs(text: str) -> list[tuple[str, float]]:
    """Runs of literal text and weights of a prompt in compel's own syntax (InvokeAI 3+'s: a
    bare ``(group)`` has weight 1 there); compel's methods are not read."""
    runs, _ = _runs(text, 0)
    merged: list[tuple[str, float]] = []
    for piece, weight in runs:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        elif piece:
            merged.append((piece, weight))
    return merged


def _runs(text: str, index: int) -> tuple[list[tuple[str, float]], int]:
    """Runs from ``index`` to the closing parenthesis of this group (or the end)."""
    runs: list[tuple[str, float]] = []
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            runs.append((text[index + 1], 1.0))
            index += 2
        elif char == ")":
            return runs, index + 1
        elif char == "(":
            inner, index = _runs(text, index + 1)
            found = _GROUP_WEIGHT.match(text, index)
            weight = 1.0
            if found is not None:
                said = found.group(0)
                signs = said.strip("+-") == ""
                weight = _sign_weight(said) if signs else float(said)
                index = found.end()
            runs.extend((piece, value * weight) for piece, value in inner)
        else:
            found = _WORD_WEIGHT.match(text, index)
            if found is not None and runs and runs[-1][0][-1:].strip() and index > 0 \
                    and text[index - 1] != "\\":
                _weigh_last_word(runs, _sign_weight(found.group(1)))
                index = found.end()
                continue
            runs.append((char, 1.0))
            index += 1
    return runs, index


def _weigh_last_word(runs: list[tuple[str, float]], factor: float) -> None:
    """Multiply the weight of the word that ends ``runs`` (back to the last space)."""
    word: list[tuple[str, float]] = []
    while runs and runs[-1][0].strip():
        word.insert(0, runs.pop())
    runs.extend((piece, value * factor) for piece, value in word)


def unescape(text: str) -> str:
    """The literal text of a prompt without weighting: ``\\(`` -> ``(`` and the like, as compel
    unescapes its syntactic characters."""
    return re.sub(r"\\([()\",.+\-=])", r"\1", text)


def has_groups(text: str) -> bool:
    """Whether ``text`` holds a matched, unescaped pair of parentheses (weighting syntax)."""
    return bool(_pairs(text)[0])


def complete_embedding(word: str, names: Iterable[str]) -> list[str]:
    """Completions for the prompt word being typed: ``<name>`` for each embedding whose name
    starts with ``word`` (with or without its ``<``), sorted; none for an empty word."""
    typed = word.removeprefix("<")
    if not word:
        return []
    return sorted(f"<{name}>" for name in names if name.startswith(typed))
