"""The normalised command (dream-cli.md section 6) and its round trip through the parser."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dreamline.format import format_command, format_number, quote_path
from dreamline.parse import parse_line
from dreamline.request import MAX_SIDE, SAMPLERS, SEED_MAX, Request


def test_txt2img_order() -> None:
    request = Request(prompt="a cat", steps=30, seed=42, width=512, height=384, cfg_scale=7.5)
    assert format_command(request) == '"a cat" -s 30 -S 42 -W 512 -H 384 -C 7.5 -A k_lms'


def test_img2img_order() -> None:
    request = Request(prompt="a tree", seed=7, init_img="sketch.png", fit=True,
                      init_mask="mask.png", strength=0.6, sampler="ddim",
                      with_variations=((1, 0.1), (2, 0.25)))
    assert format_command(request) == (
        '"a tree" -s 50 -S 7 -C 7.5 -I sketch.png -A ddim --fit -M mask.png -f 0.6 '
        "-V 1:0.1,2:0.25")


def test_img2img_always_writes_strength() -> None:
    assert format_command(Request(prompt="x", seed=1, init_img="a.png")).endswith(
        "-I a.png -A k_lms -f 0.75")


def test_other_switches_follow() -> None:
    request = Request(prompt="p", seed=1, karras=True, seamless=True, skip_normalize=True,
                      init_img="i.png", invert_mask=True, init_mask="m.png")
    text = format_command(request)
    assert text.endswith("-f 0.75 --karras --invert_mask -x --seamless")


def test_defaults_left_out() -> None:
    text = format_command(Request(prompt="p", seed=3))
    assert text == '"p" -s 50 -S 3 -C 7.5 -A k_lms'


def test_seed_must_be_concrete() -> None:
    with pytest.raises(ValueError, match="concrete seed"):
        format_command(Request(prompt="p"))


@pytest.mark.parametrize("value, text", [(0.75, "0.75"), (7.5, "7.5"), (0.1, "0.1"),
                                         (1e-05, "1e-05"), (7, "7"), (12.0, "12.0")])
def test_numbers_shortest_exact(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("path, text", [
    ("x.png", "x.png"), ("./out/000001.42.png", "./out/000001.42.png"),
    ("my pics/x.png", '"my pics/x.png"'), ("-x.png", '"-x.png"'), ("-1", '"-1"'),
    ("it's.png", '"it\'s.png"'), ('a"b', '"a\\"b"'), ("C:\\pics\\x.png", '"C:\\\\pics\\\\x.png"'),
])
def test_paths_quoted_when_needed(path: str, text: str) -> None:
    assert quote_path(path) == text
    request = Request(prompt="p", seed=1, init_img=path)
    assert parse_line(format_command(request), Request()).request.init_img == path


@pytest.mark.parametrize("prompt", [
    "", "a cat", 'say "hi"', "there's a fly", "'tis", "cats' toys", "- leading dash",
    "-s 5", "a cat -- sleeping", "back\\slash", "trailing\\", r"a cat\:0.5 dog",
    "a tabby cat:0.25 a white duck:0.75", "[blurry] a cat", "  spaces  kept  ", '"', "'", "\\\"",
])
def test_prompt_round_trip(prompt: str) -> None:
    request = Request(prompt=prompt, seed=5)
    assert parse_line(format_command(request), Request()).request == request


# A broad alphabet: letters, digits, spaces, quotes, apostrophes, backslashes, dashes, brackets,
# '=' and '#', non-ASCII; colons only escaped (an unescaped 'a:0' could be a zero weight).
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters=":")
_WORD = st.one_of(st.text(_CHARS, min_size=1, max_size=8),
                  st.sampled_from(["-", "--", "-s", "-S", "-1", "'", '"', "\\", "\\:", "'s",
                                   "there's", "[neg]", "#", "//", "a=b", "--steps=5"]))
_PROMPTS = st.lists(_WORD, max_size=8).map(" ".join)
_PATHS = st.one_of(st.text(_CHARS, min_size=1, max_size=20),
                   st.sampled_from(["x.png", "my dir/x.png", "-1", "-x.png", "C:\\a b\\c.png"]))
_UNIT = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """Any valid Request with a concrete seed, every switch exercised."""
    init_img = draw(st.none() | _PATHS)
    sampler = draw(st.sampled_from(SAMPLERS))
    save_intermediates = draw(st.none() | st.integers(1, 1000))
    request = Request(
        prompt=draw(_PROMPTS),
        steps=draw(st.integers(1, 1000)),
        seed=draw(st.integers(0, SEED_MAX)),
        iterations=draw(st.integers(1, 1000)),
        width=draw(st.none() | st.integers(8, MAX_SIDE)),
        height=draw(st.none() | st.integers(8, MAX_SIDE)),
        cfg_scale=draw(st.floats(min_value=0.0, max_value=100.0, allow_nan=False)),
        sampler=sampler,
        karras=draw(st.booleans()) if sampler.startswith("k_") else False,
        init_img=init_img,
        strength=draw(st.floats(min_value=0.0, max_value=1.0, exclude_min=True)),
        fit=draw(st.booleans()),
        init_mask=draw(st.none() | _PATHS) if init_img is not None else None,
        invert_mask=draw(st.booleans()),
        variation_amount=draw(_UNIT),
        with_variations=tuple(draw(st.lists(st.tuples(st.integers(0, SEED_MAX), _UNIT),
                                            max_size=3))),
        grid=draw(st.booleans()),
        outdir=draw(st.none() | _PATHS),
        skip_normalize=draw(st.booleans()),
        log_tokenization=draw(st.booleans()),
        save_intermediates=save_intermediates,
        decode_intermediates=draw(st.booleans()) if save_intermediates is not None else False,
        seamless=draw(st.booleans()),
    )
    # img2img must run at least one sampling step (request.validate refuses it otherwise)
    assume(init_img is None or math.floor(round(request.strength * request.steps, 6)) >= 1)
    return request


@settings(max_examples=400, deadline=None)
@given(requests())
def test_format_parse_round_trip(request: Request) -> None:
    command = format_command(request)
    parsed = parse_line(command, Request())
    assert parsed.request == request, command
    assert format_command(parsed.request) == command


def test_every_field_is_written() -> None:
    """Changing any field away from its default changes the command: the formatter knows it."""
    base = Request(prompt="p", seed=1, init_img="i.png", save_intermediates=2)
    changed = {"prompt": "q", "steps": 9, "seed": 2, "iterations": 2, "width": 64, "height": 64,
               "cfg_scale": 3.0, "sampler": "ddim", "karras": True, "init_img": "j.png",
               "strength": 0.5, "fit": True, "init_mask": "m.png", "invert_mask": True,
               "variation_amount": 0.5, "with_variations": ((3, 0.5),), "grid": True,
               "outdir": "o", "skip_normalize": True, "log_tokenization": True,
               "save_intermediates": 3, "decode_intermediates": True, "seamless": True}
    assert set(changed) == {f.name for f in fields(Request)}
    for name, value in changed.items():
        assert format_command(base.with_changes(**{name: value})) != format_command(base), name


def test_decode_intermediates_written_only_when_set() -> None:
    plain = Request(prompt="p", seed=1, save_intermediates=2)
    assert "--decode_intermediates" not in format_command(plain)
    decoded = plain.with_changes(decode_intermediates=True)
    assert format_command(decoded).endswith("--save_intermediates 2 --decode_intermediates")
    assert parse_line(format_command(decoded), Request()).request == decoded
