"""Notes on prompt text that looks like weighting or negative syntax but is read as plain text.

Torch-free.  None of these is an error: A1111 and compel read the same text the same way, and
a prompt may mean it literally.  But each is more often a slip than meant, so the parser shows
a one-line note (the picture is still made):

* a ``[`` or ``]`` without its partner stays in the prompt as text (``[words]`` is the negative
  prompt, see ``dreamline.prompts``);
* ``(text:word)`` where ``word`` is not a number is A1111's plain emphasis (1.1) of
  ``text:word``, not a weight;
* a ``(`` or ``)`` without its partner stays in the prompt as text;
* ``(text)1e3``: compel reads a weight as a plain decimal, so the exponent becomes text
  (``text e3`` at weight 1);
* a weight outside USUAL_WEIGHTS (``(cat)999``, ``(cat:-5)``) is used as given, but the picture
  breaks down long before it.
"""

from __future__ import annotations

import re

from dreamline.plural import shortened
from dreamline.prompt_syntax import DECIMAL, group_pairs, unmatched_parentheses, weighted_runs
from dreamline.prompts import NEGATIVE

#: Weights outside this range get a note: pictures break down well before either end.
USUAL_WEIGHTS = (-1.0, 3.0)
#: A1111's ``(text:weight)`` with a word where the weight goes (no slash: not a URL).
_WORD_WEIGHT = re.compile(r"^(?P<text>.*\S)\s*:\s*(?P<word>[\w.+-]+)\s*$", re.DOTALL)
_NUMBER = re.compile(DECIMAL)
#: A number with an exponent right after a closing parenthesis.
_EXPONENT = re.compile(rf"(?P<weight>{DECIMAL})(?P<rest>[eE][+-]?\d+)")


def _around(prompt: str, at: int) -> str:
    """The prompt around index ``at``, to quote in a note."""
    return shortened(prompt[max(0, at - 15):at + 15].strip())


def _bracket_notes(prompt: str) -> list[str]:
    # the [words] groups blanked in place, so what is left keeps its index in the prompt
    rest = NEGATIVE.sub(lambda found: " " * len(found.group(0)), prompt)
    notes = []
    for char in "[]":
        if char in rest:
            at = rest.index(char)
            notes.append(f"note: the {char!r} in {_around(prompt, at)!r} is not part of a "
                         f"[words] negative prompt (those need both brackets and do not nest), "
                         f"so it stays in the prompt as text")
    return notes


def _parenthesis_notes(prompt: str) -> list[str]:
    unmatched = unmatched_parentheses(prompt)
    if not unmatched:
        return []
    at = min(unmatched)  # the first is enough to point at
    char, partner = prompt[at], "(" if prompt[at] == ")" else ")"
    return [f"note: the {char!r} in {_around(prompt, at)!r} has no {partner!r}, so it stays in "
            f"the prompt as text; weighting is (words) or (words:1.3) with both parentheses"]


def _weight_notes(prompt: str) -> list[str]:
    runs = weighted_runs(NEGATIVE.sub(" ", prompt)) or []
    odd = [(text.strip(), weight) for text, weight in runs
           if text.strip() and not USUAL_WEIGHTS[0] <= weight <= USUAL_WEIGHTS[1]]
    if not odd:
        return []
    text, weight = odd[0]
    return [f"note: {shortened(text)!r} is weighted {weight:.6g}, far outside {USUAL_WEIGHTS[0]:g} "
            f"to {USUAL_WEIGHTS[1]:g} where weights usually stay; expect a broken picture"]


def _group_notes(prompt: str) -> list[str]:
    notes = []
    for start, close in sorted(group_pairs(prompt).items()):
        inner = prompt[start + 1:close]
        found = _WORD_WEIGHT.match(inner)
        if found is not None and not _NUMBER.fullmatch(found.group("word")) \
                and not found.group("text").endswith(":"):
            group, word = shortened(prompt[start:close + 1]), found.group("word")
            notes.append(f"note: in {group!r}, {word!r} is not a number, so this is plain "
                         f"emphasis (1.1) of the whole text; expected (text:1.3) for a weight")
        exponent = _EXPONENT.match(prompt, close + 1)
        if exponent is not None:
            notes.append(f"note: {shortened(prompt[start:exponent.end()])!r}: a weight is a plain "
                         f"decimal, so compel weighs it {exponent.group('weight')} and puts "
                         f"{exponent.group('rest')!r} into the text; expected a weight such as 1.3")
    return notes


def prompt_notes(prompt: str) -> tuple[str, ...]:
    """One-line notes for text in ``prompt`` (the whole prompt, negative included) that looks
    like weighting or negative syntax but is read as plain text; () when there is none."""
    return tuple(_bracket_notes(prompt) + _parenthesis_notes(prompt) + _group_notes(prompt)
                 + _weight_notes(prompt))
