"""Emphasis the user typed is written in A1111's syntax, so A1111 weighs each word as we did.

Our written ``parameters`` text is read back with A1111's own prompt-attention rules
(pngmeta/readers/attention.py, checked against A1111's documented examples in
tests/test_fetch_emphasis.py) and compared with what compel, the library that encodes our
prompts, makes of the prompt we ran.
"""

from __future__ import annotations


import pytest

from emphasis_reading import a1111_weights, compel_weights
from dreamline.pngmeta.a1111 import BLEND_NOTE, a1111_parameters, parse_a1111
from dreamline.prompts import split_prompt
from dreamline.request import Request

RUN = {"width": 64, "height": 64}


@pytest.mark.parametrize("prompt, written", [
    ("a (cat)1.3 on a mat", "a (cat:1.3) on a mat"),
    ("a cat++ and a dog-", "a (cat:1.21) and a (dog:0.9)"),
    ("(a red (cat:1.5)) x", "(a red:1.1) (cat:1.65) x"),        # A1111-style, typed here
    ("((cat)) sleeps", "(cat:1.21) sleeps"),
    ("photo \\(literal\\) 16:9 (framed)0.8", "photo \\(literal\\) 16:9 (framed:0.8)"),
    ("(a tree)-- in fog", "(a tree:0.81) in fog"),
    ("a plain prompt", "a plain prompt"),
])
def test_our_emphasis_reads_the_same_in_a1111(prompt: str, written: str) -> None:
    text = a1111_parameters(Request(prompt=prompt, seed=1), RUN)
    read = parse_a1111(text)
    assert read.prompt == written
    assert a1111_weights(read.prompt) == compel_weights(prompt)
    assert "Prompt note" not in read.fields


def test_negative_emphasis_and_sub_prompts() -> None:
    request = Request(prompt="a cat+ :2 a dog:1 [(ugly)1.3, blurry-]", seed=1)
    read = parse_a1111(a1111_parameters(request, RUN))
    assert read.prompt == "a (cat:1.1) :0.6666666666666666 AND a dog :0.3333333333333333"
    assert read.negative == "(ugly:1.3), (blurry:0.9)"
    assert a1111_weights(read.negative) == compel_weights(split_prompt(request.prompt).negative)


def test_blend_is_written_as_its_prompts_with_a_note() -> None:
    request = Request(prompt='("a (red)1.2 cat", "a dog").blend(0.7, 0.3)', seed=1)
    read = parse_a1111(a1111_parameters(request, RUN))
    assert read.prompt == "a (red:1.2) cat, a dog"
    assert read.fields["Prompt note"] == BLEND_NOTE
