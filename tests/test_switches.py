"""The switch table is complete and consistent, and help and launch defaults come from it."""

from __future__ import annotations

import re

import pytest

from dreamline.helptext import format_help
from dreamline.request import Request, RequestError
from dreamline.switches import (BY_NAME, HELP_TOPICS, SWITCHES, UNSUPPORTED, Complete,
                                Kind, launch_defaults, launch_switches)

# dream-cli.md section 1, plus --karras: (names, field)
REFERENCE = [
    (("-s", "--steps"), "steps"), (("-S", "--seed"), "seed"),
    (("-n", "--iterations"), "iterations"), (("-W", "--width"), "width"),
    (("-H", "--height"), "height"), (("-C", "--cfg_scale"), "cfg_scale"),
    (("-A", "-m", "--sampler"), "sampler"), (("-I", "--init_img"), "init_img"),
    (("-f", "--strength"), "strength"), (("-T", "--fit", "-fit"), "fit"),
    (("-M", "--init_mask"), "init_mask"), (("--invert_mask",), "invert_mask"),
    (("-v", "--variation_amount"), "variation_amount"),
    (("-V", "--with_variations"), "with_variations"), (("-g", "--grid"), "grid"),
    (("-o", "--outdir"), "outdir"), (("-x", "--skip_normalize"), "skip_normalize"),
    (("-t", "--log_tokenization"), "log_tokenization"),
    (("--save_intermediates",), "save_intermediates"), (("--seamless",), "seamless"),
    (("--karras",), "karras"), (("-h", "--help"), None),
]


@pytest.mark.parametrize("names, field", REFERENCE)
def test_reference_switches_present(names: tuple[str, ...], field: str | None) -> None:
    for name in names:
        switch = BY_NAME[name]
        assert getattr(switch, "field", "unsupported") == field, name


def test_names_are_well_formed() -> None:
    for switch in SWITCHES:
        assert re.fullmatch(r"--[a-z_]+", switch.long)
        for short in switch.shorts:
            assert re.fullmatch(r"-[A-Za-z]", short), short
        for alias in switch.aliases:
            assert alias.startswith("-") and not alias.startswith("--")
        assert switch.help and switch.expected and switch.help[-1] != "."


def test_completion_kinds() -> None:
    assert BY_NAME["-I"].complete is Complete.IMAGE
    assert BY_NAME["-M"].complete is Complete.IMAGE
    assert BY_NAME["-o"].complete is Complete.PATH
    assert BY_NAME["-S"].complete is Complete.SEED
    assert BY_NAME["-A"].complete is Complete.SAMPLER
    assert BY_NAME["-s"].complete is Complete.NONE


def test_launch_switches() -> None:
    assert {s.field for s in launch_switches()} == {
        "steps", "width", "height", "cfg_scale", "strength", "sampler", "grid"}


def test_launch_defaults_typed_and_text() -> None:
    defaults = launch_defaults({"steps": "20", "width": 640, "height": None, "cfg_scale": 9,
                                "strength": "0.5", "sampler": "ddim", "grid": True})
    assert defaults == Request(steps=20, width=640, cfg_scale=9, strength=0.5, sampler="ddim",
                               grid=True)
    assert launch_defaults({}) == Request()


@pytest.mark.parametrize("values, message", [
    ({"steps": "0"}, "-s/--steps: 0 is out of range"),
    ({"steps": "ten"}, "-s/--steps: 'ten' is not a whole number"),
    ({"cfg_scale": "x"}, "-C/--cfg_scale: 'x' is not a number"),
    ({"strength": 0}, "-f/--strength: 0 is out of range"),
    ({"sampler": "eulr"}, "-A/--sampler: 'eulr' is not one of the choices"),
    ({"grid": "yes"}, "-g/--grid: 'yes' is not on/off"),
])
def test_launch_defaults_errors(values: dict, message: str) -> None:
    with pytest.raises(RequestError, match=re.escape(message)):
        launch_defaults(values)


def test_launch_defaults_refuses_non_launch_fields() -> None:
    with pytest.raises(ValueError, match="'seed' is not a launch default"):
        launch_defaults({"seed": 1})


def test_unsupported_messages() -> None:
    assert BY_NAME["-G"].message == (
        "--gfpgan_strength (face restoration) is not supported by dreamline; line skipped")
    assert BY_NAME["-U"].message.startswith("--upscale (upscaling)")
    assert BY_NAME["--hires_fix"].message.startswith("--hires_fix (high-resolution fix)")
    supported = {name for s in SWITCHES for name in s.names}
    assert not supported & {name for u in UNSUPPORTED for name in u.names}


def test_help_all_lists_every_switch_and_field() -> None:
    text = format_help("all")
    for switch in SWITCHES:
        for name in switch.names:
            assert re.search(rf"(^|[ ,]){re.escape(name)}\b", text, re.M), name
        assert " ".join(switch.help.split()[:4]) in " ".join(text.split()), switch.long
    for entry in UNSUPPORTED:
        assert entry.names[0] in text
    for group in {s.group for s in SWITCHES}:
        assert f"\n{group.value}:\n" in text


def test_help_shows_ranges_and_defaults() -> None:
    text = " ".join(format_help("all").split())
    assert "a whole number from 1 to 1000 (default 50)" in text
    assert "(default k_lms)" in text and "k_dpm_2_a" in text
    assert "a value in (0, 1] (default 0.75)" in text


def test_short_help_fits_one_screen() -> None:
    text = format_help()
    lines = text.splitlines()
    assert len(lines) <= 24
    for switch in SWITCHES:
        if switch.common:
            assert re.search(rf"^  {re.escape((switch.shorts or (switch.long,))[0])} ", text,
                             re.M), switch.long
    for topic in HELP_TOPICS:
        assert f"-h {topic}" in text
    assert "--karras" not in text  # the rest is behind -h all / -h <group>


def test_help_shows_the_sessions_defaults() -> None:
    """-h shows the current defaults: the model's own -C, marked as such, not Request's 7.5."""
    model = format_help("", Request(cfg_scale=4.0), {"cfg_scale"})
    assert "(model default 4)" in model and "7.5" not in model
    launch = " ".join(format_help("all", Request(cfg_scale=9.5, steps=20)).split())
    assert "(default 9.5)" in launch and "(default 20)" in launch
    assert not re.search(r"\(model default [0-9]", launch)


def test_help_group() -> None:
    text = format_help("img2img")
    assert text.startswith("Image to image and inpainting:")
    assert "--init_img" in text and "--steps" not in text
    assert "--negative_prompt TEXT" in format_help("prompt")
    with pytest.raises(RequestError, match="'nope' is not a help topic; expected all, generation"):
        format_help("nope")


def test_help_fits_the_terminal() -> None:
    for topic in ("", *HELP_TOPICS):
        assert max(len(line) for line in format_help(topic).splitlines()) <= 100, topic


def test_value_kinds() -> None:
    assert BY_NAME["-V"].convert("1:0.5,2:1") == ((1, 0.5), (2, 1.0))
    assert BY_NAME["-C"].convert("1e1") == 10.0
    assert BY_NAME["-s"].convert("-3") == -3
    with pytest.raises(RequestError, match="--karras takes no value"):
        BY_NAME["--karras"].convert("1")
    assert {s.kind for s in SWITCHES} == set(Kind)
