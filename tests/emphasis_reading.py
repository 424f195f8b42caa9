"""How compel and A1111 read a prompt's emphasis, as comparable (words, weight) runs: shared by
the tests of the A1111 writer (test_a1111_emphasis) and of !fetch's translation
(test_fetch_emphasis)."""

from __future__ import annotations

import re

from compel import Compel

from dreamline.pngmeta.readers.attention import parse
from dreamline.prompt_syntax import to_compel


def _merged(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Words with their weights, spacing ignored, equal neighbours merged (rounded to 1e-3)."""
    out: list[tuple[str, float]] = []
    for text, weight in pairs:
        # CLIP's tokenizer splits "8k+" into 8, k, + as it does "8k +": spacing is no change
        words = re.sub(r" ([+-])", r"\1", " ".join(text.replace(",", " , ").split()))
        if not words:
            continue
        rounded = round(weight, 3)
        if out and out[-1][1] == rounded:
            out[-1] = (out[-1][0] + " " + words, rounded)
        else:
            out.append((words, rounded))
    return out


def compel_weights(text: str) -> list[tuple[str, float]]:
    """What compel (the library that encodes our prompts) makes of one of our prompt texts."""
    conjunction = Compel.parse_prompt_string(to_compel(text))
    return _merged([(fragment.text, fragment.weight)
                    for fragment in conjunction.prompts[0].children])


def a1111_weights(text: str) -> list[tuple[str, float]]:
    """What A1111's attention rules (re-written in pngmeta.readers.attention) make of a text."""
    return _merged([(run.text, run.weight) for run in parse(text)])
