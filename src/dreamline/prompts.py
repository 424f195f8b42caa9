"""Prompt syntax: ``text:weight`` sub-prompts, ``[negative]`` words and ``\\:`` escapes.

InvokeAI 2.0 semantics, with one deliberate change.  The reference treated *every* colon as a
weight separator, so "a 16:9 photo" or "http://x" silently became several sub-prompts.  Here a
colon separates a weight only when

* it is followed by a number (``1``, ``0.5``, ``.5``, ``-1``) that ends at whitespace or at the
  end of the prompt, and
* the character before it is not a digit (so "16:9" and "12:30" stay text).

Every other colon is plain text, and ``\\:`` is always a literal colon (unescaped in the text).
Words in ``[square brackets]`` are removed from the positive text and, joined by spaces, form the
negative (unconditional) prompt, as in the reference; an unmatched bracket stays plain text.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from dreamline.request import RequestError

# A weight separator: colon (not escaped, not after a digit), a number, then whitespace or end.
_WEIGHT = re.compile(
    r"(?<![\\0-9]):(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?=\s|$)"
)
#: One negative-prompt group, ``[words]`` (no brackets inside).
NEGATIVE = re.compile(r"\[([^\[\]]*)\]")
_SPACES = re.compile(r"\s+")


class PromptParts(NamedTuple):
    """The prompt as the conditioning needs it: weighted positive texts and one negative text."""

    positive: tuple[tuple[str, float], ...]
    negative: str


def _tidy(text: str) -> str:
    """Collapse runs of whitespace left by removed brackets and weights."""
    return _SPACES.sub(" ", text).strip()


def escape_weights(text: str) -> str:
    """``text`` with every colon that would read as a weight separator escaped (``\\:``), so
    text from elsewhere (another tool's prompt) stays literal under this module's rule."""
    return _WEIGHT.sub(lambda match: "\\:" + match.group("weight"), text)


def split_negative(prompt: str) -> tuple[str, str]:
    """Return (prompt without its [bracketed] words, the bracketed words joined by spaces)."""
    negatives = [_tidy(found) for found in NEGATIVE.findall(prompt)]
    positive = NEGATIVE.sub(" ", prompt)
    return positive, " ".join(word for word in negatives if word)


def split_prompt(prompt: str, normalize: bool = True) -> PromptParts:
    """Split ``prompt`` into weighted positive sub-prompts and the negative prompt.

    A part without a weight gets 1.0.  With ``normalize`` the weights are scaled to sum to 1
    (the reference's behaviour unless -x/--skip_normalize); a zero total cannot be scaled and is
    an error rather than the reference's silent switch to even weights.
    """
    positive_text, negative = split_negative(prompt)
    parts: list[tuple[str, float]] = []
    start = 0
    for match in _WEIGHT.finditer(positive_text):
        text = _tidy(positive_text[start:match.start()]).replace("\\:", ":")
        weight = float(match.group("weight"))
        if not text:
            raise RequestError(f"prompt: weight ':{match.group('weight')}' has no text before it; "
                               "expected 'text:weight'")
        parts.append((text, weight))
        start = match.end()
    rest = _tidy(positive_text[start:]).replace("\\:", ":")
    if rest or not parts:
        parts.append((rest, 1.0))
    if normalize:
        total = math.fsum(weight for _, weight in parts)
        if total == 0:
            shown = " ".join(f"{text}:{weight:g}" for text, weight in parts)
            raise RequestError(f"prompt: sub-prompt weights add up to zero ({shown}); expected a "
                               "non-zero total, or -x/--skip_normalize to use them as given")
        parts = [(text, weight / total) for text, weight in parts]
    return PromptParts(tuple(parts), negative)
