"""!fetch keeps other tools' emphasis: A1111's and ComfyUI's weights, written in our syntax, mean
per word what they meant there (checked against compel's own parse of the fetched prompt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from emphasis_reading import a1111_weights, compel_weights
from dreamline.parse import parse_line
from dreamline.pngmeta.readers.attention import Run, parse
from dreamline.prompts import split_prompt
from dreamline.repl.fetch import fetch
from dreamline.request import Request

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
SETTINGS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64"


def a1111_png(tmp_path: Path, prompt: str, negative: str = "") -> Path:
    info = PngImagePlugin.PngInfo()
    text = prompt + (f"\nNegative prompt: {negative}" if negative else "") + "\n" + SETTINGS
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_a1111_rules_as_its_documentation_gives_them() -> None:
    assert parse("an (important) word") == [Run("an ", 1.0), Run("important", 1.1),
                                            Run(" word", 1.0)]
    assert parse("(unbalanced") == [Run("unbalanced", 1.1)]
    assert parse("\\(literal\\]") == [Run("(literal]", 1.0)]
    assert parse("(unnecessary)(parens)") == [Run("unnecessaryparens", 1.1)]
    runs = parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
    assert [run.text for run in runs] == ["a ", "house", " ", "on", " a ", "hill", ", sun, ",
                                          "sky", "."]
    assert [round(run.weight, 4) for run in runs] == [1.0, 1.573, 1.1, 1.0, 1.1, 0.55, 1.1,
                                                      1.4641, 1.1]
    assert parse("") == [Run("", 1.0)] and parse("a) b") == [Run("a) b", 1.0)]


@pytest.mark.parametrize("prompt, negative, ours", [
    ("a (cat:1.2), dog", "", "a (cat:1.2), dog"),
    ("((cat)) on a mat", "", "(cat:1.21) on a mat"),
    ("[cat] on a mat", "", "(cat:0.9091) on a mat"),            # [..] is our negative prompt
    ("a \\(cat\\) mat", "", "a \\(cat\\) mat"),                     # literal parentheses
    ("8k+ (photo:1.2) x-", "", "8k + (photo:1.2) x -"),           # not compel's emphasis
    ("a (red (cat:1.5)) sits", "(ugly:1.3), [blurry]", "a (red:1.1) (cat:1.65) sits "
                                                        "[(ugly:1.3), (blurry:0.9091)]"),
    ("best (quality, 8k:1.2)5 x", "", "best (quality, 8k:1.2) 5 x"),  # not compel's weight
    ("a photo :2 (of a lake:0.8)", "", None),
])
def test_hand_written_a1111_emphasis_means_the_same(tmp_path: Path, prompt: str, negative: str,
                                                    ours: str | None) -> None:
    fetched = fetch(a1111_png(tmp_path, prompt, negative))
    request = parse_line(fetched.command, Request()).request  # runnable as it stands
    if ours is not None:
        assert request.prompt == ours
    parts = split_prompt(request.prompt)
    assert len(parts.positive) == 1  # no stray ":2" sub-prompt weight
    assert compel_weights(parts.positive[0][0]) == a1111_weights(prompt)
    if negative:
        assert compel_weights(parts.negative) == a1111_weights(negative)
    assert not [note for note in fetched.notes if "(" in note and "prompt syntax" in note]


def test_literal_square_brackets_and_prompt_editing_are_named(tmp_path: Path) -> None:
    fetched = fetch(a1111_png(tmp_path, "a \\[cat\\] in [snow:rain:0.5], [red|blue] sky "
                                        "(8k + more:1.2)"))
    request = parse_line(fetched.command, Request()).request
    assert request.prompt == "a cat in snow rain, red blue sky (8k more:1.2)"
    syntax = [note for note in fetched.notes if "prompt syntax" in note]
    assert len(syntax) == 1
    for what in ("literal [ ]", "prompt editing [snow:rain:0.5]", "alternation [red|blue]",
                 "+/- inside emphasis"):
        assert what in syntax[0]


def test_real_comfyui_file_keeps_its_emphasis() -> None:
    """A real ComfyUI graph (enslo/sd-metadata) with (words:1.2) in both prompts."""
    fetched = fetch(FIXTURES / "enslo-sd-metadata" / "comfyui-low-denoise.png")
    parts = split_prompt(parse_line(fetched.command, Request()).request.prompt)
    weights = compel_weights(parts.positive[0][0])
    assert ("pixel art , dithering , pixelated , sprite art , 8-bit", 1.2) in weights
    assert ("worst quality , bad quality", 1.2) in compel_weights(parts.negative)
    assert not [note for note in fetched.notes if "prompt syntax" in note]


def test_real_fooocus_file_keeps_its_negative_emphasis() -> None:
    fetched = fetch(FIXTURES / "sd-parsers" / "fooocus1_cropped.png")
    parts = split_prompt(parse_line(fetched.command, Request()).request.prompt)
    negative = compel_weights(parts.negative)
    assert any(weight == 1.4 and text.startswith("worst quality") for text, weight in negative)
    assert not [note for note in fetched.notes if "prompt syntax" in note]


def test_real_invokeai3_file_keeps_its_compel_weights() -> None:
    """InvokeAI 3+ writes compel's syntax (grainy+, noisy++): kept, weighed as compel did."""
    fetched = fetch(FIXTURES / "sd-parsers" / "invokeai_imeta1.png")
    parts = split_prompt(parse_line(fetched.command, Request()).request.prompt)
    negative = compel_weights(parts.negative)
    assert ("grainy", 1.1) in negative and ("noisy", 1.21) in negative and ("jpg", 1.1) in negative
    assert not [note for note in fetched.notes if "prompt syntax" in note]


def test_a_bare_compel_group_has_weight_one(tmp_path: Path) -> None:
    from dreamline.pngmeta.readers.prompt_syntax import translate

    assert translate("a (red cat) on (a mat)1.2", style="compel").prompt == \
        "a red cat on (a mat:1.2)"
