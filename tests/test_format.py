"""The normalised command (dream-cli.md section 6) and its round trip through the parser."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dreamline.format import format_command, format_number, quote, quote_path
from dreamline.parse import parse_line
from dreamline.prompts import split_prompt
from dreamline.request import (CFG_SCALE_RANGE, MAX_SIDE, SAMPLERS, SEED_MAX, VARIATION_MIN,
                               Request, RequestError)
from dreamline import samplers as sampler_table


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


# A broad alphabet: letters, digits, spaces (unicode ones too), quotes, apostrophes, backslashes,
# dashes, brackets, colons, '=' and '#', non-ASCII; no control characters (a line refuses them,
# and so does validate).
_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Cf"))
_WORD = st.one_of(st.text(_CHARS, min_size=1, max_size=8),
                  st.sampled_from(["-", "--", "-s", "-S", "-1", "-0.5", "'", '"', "\\", "\\:",
                                   "'s", "there's", "'tis", "[neg]", "[", "]", "#", "//", "a=b",
                                   "--steps=5", "-h", "--negative_prompt", "cat:0.5", "16:9",
                                   "\u00e9t\u00e9", "\u732b", "\U0001f431", "\u00a0",
                                   "\u2028", "\\\"", "\"\\"]))
_PROMPTS = st.lists(_WORD, max_size=8).map(" ".join)
_PATHS = st.one_of(st.text(_CHARS, min_size=1, max_size=20).filter(str.strip),  # blank: refused
                   st.sampled_from(["x.png", "my dir/x.png", "-1", "-x.png", "C:\\a b\\c.png",
                                    "it's.png", "\\", "~/x.png", "\u732b.png", "a:b", "--x"]))


def _edges(low: float, high: float, *, exclude_min: bool = False) -> st.SearchStrategy[float]:
    """Floats in the range, with its ends and the values next to them drawn often."""
    import math
    ends = [high, math.nextafter(high, low), math.nextafter(low, high)]
    if not exclude_min:
        ends += [low, -0.0] if low == 0.0 else [low]
    inside = st.floats(min_value=low, max_value=high, exclude_min=exclude_min, allow_nan=False)
    # a float field may hold an int (Request(cfg_scale=5) is valid): it is written as 5.0
    whole = st.integers(math.ceil(low) + int(exclude_min), math.floor(high))
    return st.one_of(st.sampled_from(ends), inside, whole)


def _int_edges(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([low, low + 1, high - 1, high]), st.integers(low, high))


_UNIT = _edges(0.0, 1.0)


_LORA_NAMES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf"), blacklist_characters=",<>"),
            min_size=1, max_size=12).filter(lambda name: name.strip() == name and name != ""),
    st.sampled_from(["detail", "my style", "C:\\loras\\x.safetensors", "a:1", "-x", "1.5"]))
_LORA_WEIGHTS = st.one_of(st.sampled_from([1.0, -1.0, 0.0, 0.8, -0.5, 2.0]),
                          st.floats(-10, 10, allow_nan=False))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """Any valid Request with a concrete seed, every switch exercised, numbers at their edges."""
    init_img = draw(st.none() | _PATHS)
    sampler = draw(st.sampled_from(SAMPLERS))
    schedule = draw(st.sampled_from(sampler_table.spec(sampler).schedules))
    karras = draw(st.booleans()) if schedule == "karras" else False
    save_intermediates = draw(st.none() | _int_edges(1, 1000))
    skip_normalize = draw(st.booleans())
    prompt = draw(_PROMPTS)
    try:  # weights that add up to zero are refused when normalising: not a valid request
        split_prompt(prompt, normalize=not skip_normalize)
    except RequestError:
        assume(False)
    request = Request(
        prompt=prompt,
        steps=draw(_int_edges(1, sampler_table.spec(sampler).max_steps or 1000)),
        seed=draw(_int_edges(0, SEED_MAX)),
        iterations=draw(_int_edges(1, 1000)),
        width=draw(st.none() | _int_edges(8, MAX_SIDE)),
        height=draw(st.none() | _int_edges(8, MAX_SIDE)),
        cfg_scale=draw(_edges(*CFG_SCALE_RANGE)),
        sampler=sampler,
        karras=karras,
        schedule=schedule,
        init_img=init_img,
        strength=draw(_edges(0.0, 1.0, exclude_min=True)),
        fit=draw(st.booleans()),
        init_mask=draw(st.none() | _PATHS) if init_img is not None else None,
        invert_mask=draw(st.booleans()),
        variation_amount=draw(st.one_of(st.just(0.0), _edges(VARIATION_MIN, 1.0))),  # 0: off
        with_variations=tuple(draw(st.lists(st.tuples(_int_edges(0, SEED_MAX), _UNIT),
                                            max_size=3))),
        grid=draw(st.booleans()),
        outdir=draw(st.none() | _PATHS),
        skip_normalize=skip_normalize,
        log_tokenization=draw(st.booleans()),
        save_intermediates=save_intermediates,
        decode_intermediates=draw(st.booleans()) if save_intermediates is not None else False,
        seamless=draw(st.booleans()),
        loras=tuple(draw(st.lists(st.tuples(_LORA_NAMES, _LORA_WEIGHTS), max_size=3))),
    )
    # img2img must run at least one sampling step (request.validate refuses it otherwise)
    assume(init_img is None or math.floor(round(request.strength * request.steps, 6)) >= 1)
    return request


@settings(max_examples=400, deadline=None)
@given(requests())
def test_format_parse_round_trip(request: Request) -> None:
    """Every switch of the table: the formatted command parses back to an equal request, and
    formats to the same command again."""
    command = format_command(request)
    parsed = parse_line(command, Request())
    assert parsed.request == request, command
    assert format_command(parsed.request) == command


_NEGATIVE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf"),
                                       blacklist_characters="[]"), max_size=20)


@settings(max_examples=100, deadline=None)
@given(_PROMPTS, _NEGATIVE_TEXT)
def test_negative_prompt_switch_is_the_bracket_form(prompt: str, negative: str) -> None:
    """--negative_prompt TEXT gives the same request as the prompt with [TEXT] in it."""
    line = f"{quote(prompt)} --negative_prompt {quote(negative)} -S 1 -x"
    try:
        by_switch = parse_line(line, Request()).request
    except RequestError:  # e.g. a prompt whose own brackets are unbalanced around the new ones
        assume(False)
    if not negative.strip():
        expected = prompt
    else:
        expected = f"{prompt} [{negative}]" if prompt else f"[{negative}]"
    by_brackets = Request(prompt=expected, seed=1, skip_normalize=True)
    assert by_switch == by_brackets
    assert parse_line(format_command(by_switch), Request()).request == by_switch


def test_every_field_is_written() -> None:
    """Changing any field away from its default changes the command: the formatter knows it."""
    base = Request(prompt="p", seed=1, init_img="i.png", save_intermediates=2)
    changed = {"prompt": "q", "steps": 9, "seed": 2, "iterations": 2, "width": 64, "height": 64,
               "cfg_scale": 3.0, "sampler": "ddim", "karras": True, "schedule": "exponential",
               "init_img": "j.png",
               "strength": 0.5, "fit": True, "init_mask": "m.png", "invert_mask": True,
               "variation_amount": 0.5, "with_variations": ((3, 0.5),), "grid": True,
               "outdir": "o", "skip_normalize": True, "log_tokenization": True,
               "save_intermediates": 3, "decode_intermediates": True, "seamless": True,
               "loras": (("detail", 0.5),), "deepcache": 3, "tome": 0.5}
    # --dry_run is about this line only (nothing is made): never part of the image's command
    assert set(changed) == {f.name for f in fields(Request)} - {"dry_run"}
    for name, value in changed.items():
        assert format_command(base.with_changes(**{name: value})) != format_command(base), name
    assert format_command(base.with_changes(dry_run=True)) == format_command(base)


def test_decode_intermediates_written_only_when_set() -> None:
    plain = Request(prompt="p", seed=1, save_intermediates=2)
    assert "--decode_intermediates" not in format_command(plain)
    decoded = plain.with_changes(decode_intermediates=True)
    assert format_command(decoded).endswith("--save_intermediates 2 --decode_intermediates")
    assert parse_line(format_command(decoded), Request()).request == decoded
