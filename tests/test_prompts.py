"""Sub-prompt weights, negative words and escapes (dream-cli.md section 1, prompt syntax)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreamline.prompts import PromptParts, escape_weights, split_negative, split_prompt
from dreamline.request import RequestError

CASES = [
    # (prompt, normalize, positive, negative)
    ("a cat", True, (("a cat", 1.0),), ""),
    ("", True, (("", 1.0),), ""),
    ("a tabby cat:0.25 a white duck:0.75", True,
     (("a tabby cat", 0.25), ("a white duck", 0.75)), ""),
    ("cat:2 dog", True, (("cat", 2 / 3), ("dog", 1 / 3)), ""),
    ("cat:2 dog", False, (("cat", 2.0), ("dog", 1.0)), ""),
    ("cat:3 dog:1", False, (("cat", 3.0), ("dog", 1.0)), ""),
    ("cat:.5 dog:+1.5", True, (("cat", 0.25), ("dog", 0.75)), ""),
    ("cat:2 dog:-1", True, (("cat", 2.0), ("dog", -1.0)), ""),
    ("cat:1 dog:-1", False, (("cat", 1.0), ("dog", -1.0)), ""),
    ("cat:1.", True, (("cat", 1.0),), ""),
    # colons that are not weights stay text
    ("a 16:9 photo", True, (("a 16:9 photo", 1.0),), ""),
    ("at 12:30 sharp", True, (("at 12:30 sharp", 1.0),), ""),
    ("see http://example.com/x", True, (("see http://example.com/x", 1.0),), ""),
    ("portrait: a man", True, (("portrait: a man", 1.0),), ""),
    ("ratio:2x wide", True, (("ratio:2x wide", 1.0),), ""),
    # escaped colons are literal, unescaped in the text
    (r"a cat\:0.5 dog", True, (("a cat:0.5 dog", 1.0),), ""),
    (r"a\:b:3 c", False, (("a:b", 3.0), ("c", 1.0)), ""),
    # negative words
    ("a [blurry] cat [ugly, bad]", True, (("a cat", 1.0),), "blurry ugly, bad"),
    ("[only negative]", True, (("", 1.0),), "only negative"),
    ("a cat [blurry]:0.5 a dog:0.5", True, (("a cat", 0.5), ("a dog", 0.5)), "blurry"),
    ("a [ cat", True, (("a [ cat", 1.0),), ""),
    ("a [] cat", True, (("a cat", 1.0),), ""),
    ("  spaced   out  ", True, (("spaced out", 1.0),), ""),
]


@pytest.mark.parametrize("prompt, normalize, positive, negative", CASES)
def test_split_prompt(prompt: str, normalize: bool, positive: tuple, negative: str) -> None:
    parts = split_prompt(prompt, normalize=normalize)
    assert isinstance(parts, PromptParts)
    assert [text for text, _ in parts.positive] == [text for text, _ in positive]
    for (_, got), (_, want) in zip(parts.positive, positive, strict=False):
        assert math.isclose(got, want, rel_tol=1e-12)
    assert parts.negative == negative


@pytest.mark.parametrize("prompt, message", [
    ("cat:1 dog:-1", "add up to zero"),
    ("cat:0", "add up to zero"),
    (":0.5 cat", "has no text before it"),
    ("cat:1 :2", "has no text before it"),
])
def test_split_prompt_errors(prompt: str, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        split_prompt(prompt)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("prompt:")


def test_zero_total_is_fine_without_normalising() -> None:
    assert split_prompt("cat:1 dog:-1", normalize=False).positive == (("cat", 1.0), ("dog", -1.0))


def test_split_negative_keeps_rest() -> None:
    assert split_negative("a [b] c") == ("a   c", "b")


@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z ]{0,8}[a-z]", fullmatch=True),
                          st.integers(1, 9)), min_size=1, max_size=5))
def test_weights_normalise_to_one(parts: list[tuple[str, int]]) -> None:
    prompt = " ".join(f"{text}:{weight}" for text, weight in parts)
    got = split_prompt(prompt)
    assert [text for text, _ in got.positive] == [" ".join(t.split()) for t, _ in parts]
    assert math.isclose(math.fsum(w for _, w in got.positive), 1.0)
    raw = split_prompt(prompt, normalize=False)
    assert [w for _, w in raw.positive] == [float(w) for _, w in parts]


@given(st.text(alphabet=st.characters(blacklist_characters="[]:\\"), max_size=40))
def test_plain_text_is_one_part(text: str) -> None:
    got = split_prompt(text)
    assert got.positive == ((" ".join(text.split()), 1.0),)
    assert got.negative == ""


@pytest.mark.parametrize("text", ["a cat:2", "a:1 b:.5 c", "16:9 photo:-1", "a\\:1 b:3"])
def test_escape_weights_keeps_text_literal(text: str) -> None:
    assert escape_weights(text) != text
    parts = split_prompt(escape_weights(text), normalize=False)
    assert parts.positive == ((text.replace("\\:", ":"), 1.0),)
