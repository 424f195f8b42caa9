"""Prompt weighting and long prompts (issue 9, section 2), checked against compel's own tensors.

The tiny text encoder (tests/tiny_models.py) has the real CLIP tokenizer and topology, so compel
encodes exactly as it would for SD 1.x; dreamline must give the same tensors, and a prompt with
weight 1 everywhere must give exactly the plain 77-token encoding it gave before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compel import Compel
from compel.embeddings_provider import SplitLongTextMode
from core_fixtures import tiny_model

from dreamline.core import Generator
from dreamline.core.conditioning import TextEncoder
from dreamline.errors import DreamlineError
from dreamline.request import Request

LONG = ", ".join(f"word{index}" for index in range(40))  # well over 75 tokens


@pytest.fixture(scope="module")
def text() -> TextEncoder:
    model = tiny_model()
    return TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                       lambda _line: None)


@pytest.fixture(scope="module")
def compel() -> Compel:
    model = tiny_model()
    return Compel(tokenizer=model.tokenizer, text_encoder=model.text_encoder,
                  truncate_long_prompts=False, split_long_text_mode=SplitLongTextMode.WORDS)


def plain_77(text: str) -> torch.Tensor:
    """The encoding dreamline used before compel: pad/truncate to 77 tokens, no mask."""
    model = tiny_model()
    ids = model.tokenizer(text, padding="max_length", max_length=77, truncation=True,
                          return_tensors="pt").input_ids
    with torch.inference_mode():
        return model.text_encoder(ids, attention_mask=None)[0]


def library(compel: Compel, text: str) -> torch.Tensor:
    with torch.inference_mode():
        return compel.build_conditioning_tensor(text)


@pytest.mark.parametrize("prompt", [
    "a cat", "", "a red fox in the snow, photo", 'a sign saying "hello", world',
    "(a cat)1 on a mat", "a cat, 16:9 photo",
    # everyday text that only looks like syntax stays plain
    "portrait, 8k, highly-detailed", "a cat -- sleeping", 'say "hi" (quietly', "c-3po and r2-d2",
    "dogs+cats", "hello.world()", "masterpiece!!!",
])
def test_weight_one_everywhere_is_the_plain_encoding(text: TextEncoder, prompt: str) -> None:
    got = text.encode(prompt)
    expected = plain_77(prompt.replace("(a cat)1", "a cat"))
    assert got.shape == (1, 77, 64)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("ours, compels", [
    ("a (cat)1.3 on a mat", "a (cat)1.3 on a mat"),
    ("a cat++ on a mat", "a cat++ on a mat"),
    ("a cat- on a mat", "a cat- on a mat"),
    ("a (fat cat)0.5 on a mat", "a (fat cat)0.5 on a mat"),
    ('("a cat", "a dog").blend(0.7, 0.3)', '("a cat", "a dog").blend(0.7, 0.3)'),
    ('("a cat", "a dog").and()', '("a cat", "a dog").and()'),
    # A1111's syntax, translated
    ("a (cat:1.3) on a mat", "a (cat)1.3 on a mat"),
    ("a (cat) on a mat", "a (cat)1.1 on a mat"),
    ("a ((cat)) on a mat", "a ((cat)1.1)1.1 on a mat"),  # flattened to (cat)1.21: same tensor
    ("((((((cat))))))", "((((((cat)1.1)1.1)1.1)1.1)1.1)1.1"),
    (r"a \(cat\) on a mat", r"a \(cat\) on a mat"),
    (LONG, LONG),
    (f"({LONG})1.2", f"({LONG})1.2"),
])
def test_weighting_matches_compel(text: TextEncoder, compel: Compel, ours: str,
                                  compels: str) -> None:
    got = text.encode(ours)
    expected = library(compel, compels)
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


def test_weights_change_the_conditioning(text: TextEncoder) -> None:
    plain = text.encode("a cat on a mat")
    for weighted in ("a (cat)1.3 on a mat", "a (cat:1.3) on a mat", "a cat++ on a mat",
                     "a (cat) on a mat"):
        assert not torch.allclose(text.encode(weighted), plain)
    assert torch.equal(text.encode("a (cat:1.3) on a mat"), text.encode("a (cat)1.3 on a mat"))


def test_long_prompt_is_chunked_not_cut(text: TextEncoder) -> None:
    long = text.encode(LONG)
    assert long.shape == (1, 154, 64)
    # the words past 75 tokens are in the second chunk, not cut off
    assert not torch.equal(long[:, 77:], plain_77(""))


def test_break_starts_a_new_chunk(text: TextEncoder) -> None:
    joined = text.encode("a cat BREAK a (dog)1.2")
    assert joined.shape == (1, 154, 64)
    assert torch.equal(joined[:, :77], text.encode("a cat"))
    assert torch.equal(joined[:, 77:], text.encode("a (dog)1.2"))


@pytest.mark.parametrize("prompt", ["red apple BREAK fire", '("a cat", "a dog").and()'])
def test_a_short_prompt_in_two_chunks_is_not_called_long(prompt: str) -> None:
    lines: list[str] = []
    model = tiny_model()
    text = TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                       lines.append)
    assert text.conditioning(prompt).chunks == 2
    assert len(lines) == 1
    assert lines[0].startswith("prompt split by BREAK or .and(): 2 chunks of 75 tokens")


def test_negative_is_padded_to_the_prompts_chunks(compel: Compel) -> None:
    lines: list[str] = []
    model = tiny_model()
    text = TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                       lines.append)
    both = text.conditioning(f"{LONG} [fog]")
    assert both.cond.shape == both.uncond.shape == (1, 154, 64)
    assert both.chunks == 2
    assert torch.equal(both.uncond[:, :77], text.encode("fog"))
    empty_chunk = compel.conditioning_provider.empty_z
    assert torch.equal(both.uncond[:, 77:], empty_chunk)
    assert len(lines) == 1 and lines[0].startswith("long prompt: 2 chunks of 75 tokens")
    # and the other way round: a long negative pads the prompt
    other = text.conditioning(f"a cat [{LONG}]")
    assert other.cond.shape == other.uncond.shape == (1, 154, 64)
    assert torch.equal(other.cond[:, :77], text.encode("a cat"))


def test_short_prompt_reports_nothing() -> None:
    lines: list[str] = []
    model = tiny_model()
    text = TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype,
                       lines.append)
    result = text.conditioning("a (cat)1.2 [fog]")
    assert lines == [] and result.chunks == 1


def test_subprompts_of_different_lengths_are_padded_then_summed(text: TextEncoder) -> None:
    mixed = text.conditioning(f"{LONG} end:1 a cat:1")
    long, cat = text.encode(f"{LONG} end"), text.encode("a cat")
    empty = text.encode("")
    padded_cat = torch.cat([cat, empty], dim=1)
    assert torch.allclose(mixed.cond, 0.5 * long + 0.5 * padded_cat, atol=1e-6)
    assert mixed.uncond.shape == (1, 154, 64)


@pytest.mark.parametrize("prompt", ["a cat.swap(dog)", "a (cat).swap(dog)"])
def test_swap_is_refused_in_one_line(text: TextEncoder, prompt: str) -> None:
    with pytest.raises(DreamlineError, match=r"\.swap\(\)") as info:
        text.conditioning(prompt)
    assert "\n" not in str(info.value)


def test_weighting_reaches_the_pixels() -> None:
    gen = Generator(tiny_model())

    def pixels(prompt: str) -> np.ndarray:
        request = Request(prompt=prompt, steps=2, seed=5, width=64, height=64)
        return np.asarray(gen.generate(request)[0].image)

    plain = pixels("a cat on a mat")
    assert np.array_equal(pixels("(a cat)1 on a mat"), plain)
    assert not np.array_equal(pixels("a (cat:1.5) on a mat"), plain)


def test_compel_lora_syntax_is_refused_in_one_line(text: TextEncoder) -> None:
    with pytest.raises(DreamlineError, match="names a LoRA") as info:
        text.conditioning("a cat withLora(detail, 0.5)")
    assert "\n" not in str(info.value)
