"""Errors of a prompt line said under the prompt: one line that fits 80 columns with the bad
word first (the prompt's error bar is one line; it cut what was past column 80), and a launch
option typed on a line named as one."""

from __future__ import annotations

import pytest

from dreamline.launch_options import LAUNCH_OPTIONS, launch_only
from dreamline.parse import parse_line
from dreamline.request import Request, RequestError
from dreamline.switches import BY_NAME


def error_of(line: str) -> str:
    with pytest.raises(RequestError) as caught:
        parse_line(line, Request())
    return str(caught.value)


@pytest.mark.parametrize("line, expected", [
    ("a --device cuda", "--device is a launch option, given when dreamline starts"),
    ("a --threads 2", "--threads is a launch option, given when dreamline starts"),
    ("a --device=cuda", "--device is a launch option, given when dreamline starts"),
    ("a -F", "-F is a launch option, given when dreamline starts (dreamline -F ...)"),
    ("a --model demo", "--model is a launch option, given when dreamline starts; use "
                       "!switch NAME|PATH"),
    ("a --from_file x.txt", "--from_file is a launch option, given when dreamline starts; "
                            "use !replay FILE"),
])
def test_a_launch_option_on_a_line_is_named_as_one(line: str, expected: str) -> None:
    assert error_of(line).startswith(expected)


def test_every_launch_only_option_is_named_as_one_within_80_columns() -> None:
    for option in LAUNCH_OPTIONS:
        for name in option.names:
            if name in BY_NAME:  # also a prompt-line switch (-o) or the reference's (-c)
                assert launch_only(name) is None
                continue
            message = error_of(f"a {name}")
            assert message.startswith(f"{name} is a launch option") and len(message) <= 80


@pytest.mark.parametrize("line, word", [
    ("a --frob 3", "'--frob'"),
    ("a -Q", "'-Q'"),
    ("a --frobnicate_the_widget 3", "'--frobnicate_the_widget'"),
    ("a --outdirr x", "'--outdirr'"),
    ("a --stesp 5", "'--stesp'"),
])
def test_an_unknown_switch_fits_80_columns_naming_it_first(line: str, word: str) -> None:
    message = error_of(line)
    assert message.startswith(f"unknown switch {word}; ") and len(message) <= 80


def test_an_unknown_switch_keeps_the_longest_hint_that_fits() -> None:
    assert error_of("a -Q") == "unknown switch '-Q'; -h lists the switches, or quote the prompt"
    assert error_of("a --outdirr x").endswith("did you mean --outdir or --outcrop?")
    long_name = "--" + "x" * 70  # past 80 columns whatever the hint: the name still comes first
    assert error_of(f"a {long_name}") == f"unknown switch '{long_name}'; -h lists the switches"


@pytest.mark.parametrize("name", ["-W/--width", "-H/--height"])
def test_a_side_below_the_models_multiple_is_worded_as_the_range(name: str) -> None:
    """-W 7 (below the table's 8) and -W 9 (below the model's multiple, 16) say the same kind
    of range: the real minimum and the model's multiple."""
    from dreamline.image_sizes import floor_side

    below_table = error_of(f"a {name.split('/')[0]} 7")
    assert below_table == f"{name}: 7 is out of range; expected a size in pixels from 8 to 8192"
    with pytest.raises(RequestError) as caught:
        floor_side(name, 9, 16, lambda _line: None)
    assert str(caught.value) == (f"{name}: 9 is out of range; expected a size in pixels from 16 "
                                 "to 8192 (a multiple of 16 for this model)")
