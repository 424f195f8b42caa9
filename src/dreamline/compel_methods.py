"""Checks of compel's method syntax in a prompt, before any model runs (torch-free).

compel (InvokeAI's prompt library) reads ``("a cat", "a dog").blend(0.7, 0.3)`` and
``("a cat", "a dog").and(1, 0.5)``: a parenthesized, comma-separated list of prompts, then the
method and its weights.  A mistake there (a weight too few, a word where a number goes) made
compel raise deep inside the generator; ``check_methods`` says it in one line instead, naming
the text and what was expected.  An empty argument list (``.blend()``, ``.and()``) means equal
weights, and ``.blend`` may end with ``no_normalize``, as compel allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from dreamline.plural import counted, shortened
from dreamline.prompt_syntax import to_compel
from dreamline.request import RequestError

#: A compel method that takes one weight per prompt; ``.add`` is compel's other name for ``.and``.
_METHOD = re.compile(r"(?<!\\)\.(blend|and|add)\(")
#: Deepest nesting of weighting groups compel is asked to parse (about 2 s at 8 on a CPU).
MAX_NESTING = 8
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _structure(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of each character of ``text`` that is outside double quotes and not
    escaped by a backslash (the quotes themselves left out): where compel's syntax lives."""
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted:
            yield index, char
        index += 1


def _pairs(text: str) -> dict[int, int]:
    """Each closed '(' of ``text`` (quotes and escapes respected) -> its ')'."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for index, char in _structure(text):
        if char == "(":
            stack.append(index)
        elif char == ")" and stack:
            pairs[stack.pop()] = index
    return pairs


def _split_prompts(group: str) -> list[str]:
    """The comma-separated prompts the text between a group's parentheses holds (commas inside
    quotes or inner parentheses do not separate), each stripped."""
    depth = 0
    cuts = [-1]
    for index, char in _structure(group):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            cuts.append(index)
    cuts.append(len(group))
    return [group[start + 1:end].strip() for start, end in zip(cuts, cuts[1:], strict=False)]


def _quoted(prompt: str) -> bool:
    return len(prompt) >= 2 and prompt[0] == '"' and prompt[-1] == '"'


def _depth(text: str) -> int:
    """The deepest nesting of parentheses in ``text`` (quotes and escapes respected)."""
    depth = deepest = 0
    for _, char in _structure(text):
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")" and depth:
            depth -= 1
    return deepest


def check_nesting(text: str) -> None:
    """Raise RequestError when the weighting groups of ``text`` (A1111's translated to compel's,
    where ``((cat))`` is one group) nest deeper than MAX_NESTING: compel's parser takes about
    twice as long per level (seconds at 10, minutes past 16), so such a line would stall."""
    depth = _depth(to_compel(text))
    if depth > MAX_NESTING:
        raise RequestError(f"prompt: weighting groups nested {depth} deep in "
                           f"{shortened(text)!r}; expected "
                           f"at most {MAX_NESTING} levels (compel's parser takes twice as long "
                           "for each)")


def check_methods(text: str) -> None:
    """Raise RequestError (one line) for a compel ``.blend(...)``/``.and(...)`` in ``text``
    whose weights are not numbers, whose parenthesis is not closed, whose prompts (two or more)
    are not each in double quotes (compel would read them as plain text), whose weights do not
    match its prompts one to one, or (``.blend`` normalized) whose weights add up to zero.
    Text without these methods passes unchecked, but for its nesting (``check_nesting``)."""
    check_nesting(text)
    pairs = _pairs(text)
    opening = {close: start for start, close in pairs.items()}
    for found in _METHOD.finditer(text):
        method = found.group(1)
        open_at = found.end() - 1
        close = pairs.get(open_at)
        shown = text[found.start():close + 1 if close is not None else len(text)]
        if close is None:
            raise RequestError(f"prompt: {shown!r} has no closing ')'; expected "
                               f".{method}(weights)")
        words = [word.strip() for word in text[open_at + 1:close].split(",")]
        normalized = method == "blend" and words[-1] != "no_normalize"
        if method == "blend" and not normalized:
            words = words[:-1]
        weights = [] if words in ([], [""]) else words
        for word in weights:
            if not _NUMBER.fullmatch(word):
                raise RequestError(f"prompt: {shown!r}: weight {word!r} is not a number; "
                                   "expected weights are numbers")
        if normalized and weights and math.fsum(float(word) for word in weights) == 0:
            # compel divides by the total: the conditioning would be NaN
            raise RequestError(f"prompt: {shown!r}: the weights add up to zero; expected a "
                               "non-zero total (or no_normalize as the last argument)")
        group_close = found.start() - 1
        group_open = opening.get(group_close)
        if group_open is None:
            continue  # compel reads "cat.blend(1)" as plain text
        chained = re.search(r"\.(?:blend|and|add)$", text[:group_open])
        if chained is not None:
            raise RequestError(f"prompt: {text[chained.start():close + 1]!r} chains two compel "
                               "methods; expected one .blend() or .and() after a group")
        parts = _split_prompts(text[group_open + 1:group_close])
        prompts = len(parts)
        if prompts == 1 and len(re.findall(r'(?<!\\)"', parts[0])) > 2:
            # ("a" "b").blend(...): compel reads quoted prompts without commas as plain text
            raise RequestError(
                f"prompt: {text[group_open:close + 1]!r}: the quoted prompts are not separated "
                f"by commas; expected (\"a\", \"b\"){text[group_close + 1:close + 1]}")
        if prompts > 1 and not all(_quoted(part) for part in parts):
            # compel reads an unquoted list as plain text: the method would silently do nothing
            wanted = ", ".join(part if _quoted(part) else f'"{part.strip(chr(34))}"'
                               for part in parts)
            raise RequestError(
                f"prompt: {text[group_open:close + 1]!r}: compel blends or joins several "
                f"prompts only when each is in double quotes; expected "
                f"({wanted}){text[group_close + 1:close + 1]}, with the whole prompt in single "
                f"quotes on the line (double quotes there only group words)")
        if weights and len(weights) != prompts:
            raise RequestError(
                f"prompt: {text[group_open:close + 1]!r}: {counted(prompts, 'prompt')} but "
                f"{counted(len(weights), 'weight')}; expected one weight per prompt")
