"""An empty or blank path is refused wherever a path is given (Path("") is the current
directory, so `-o ''` wrote there): every path-valued switch of the table, every path-valued
launch option, the ! commands' paths, and a Request made any other way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dreamline.cli import main
from dreamline.launch_options import LAUNCH_OPTIONS
from dreamline.parse import parse_line
from dreamline.request import Request, RequestError, validate
from dreamline.switches import SWITCHES, Kind

PATH_SWITCHES = [switch for switch in SWITCHES if switch.kind is Kind.PATH]


def test_the_table_has_path_switches() -> None:
    assert {switch.long for switch in PATH_SWITCHES} >= {"--outdir", "--init_img", "--init_mask"}


@pytest.mark.parametrize("value", ["''", '""', '" "', "'  '"])
@pytest.mark.parametrize("switch", PATH_SWITCHES, ids=lambda switch: switch.long)
def test_every_path_switch_refuses_an_empty_or_blank_value(switch, value: str) -> None:  # noqa: ANN001
    for name in switch.names:
        extra = " -I x.png" if switch.field == "init_mask" else ""
        with pytest.raises(RequestError) as caught:
            parse_line(f"a {name} {value}{extra}", Request())
        message = str(caught.value)
        assert message.startswith(f"{switch.label}: ") and "expected" in message
        assert "\n" not in message


@pytest.mark.parametrize("field, expected", [
    ("outdir", "-o/--outdir: ' ' is a blank path; expected a directory path"),
    ("init_img", "-I/--init_img: ' ' is a blank path; expected an image path"),
])
def test_a_request_with_a_blank_path_is_refused(field: str, expected: str) -> None:
    with pytest.raises(RequestError, match=expected):
        validate(dataclasses.replace(Request(), **{field: " "}))


PATH_OPTIONS = [option.names[-1] for option in LAUNCH_OPTIONS
                if getattr(option.options.get("type"), "__name__", "") == "convert"]


def test_the_launch_table_has_path_options() -> None:
    assert set(PATH_OPTIONS) >= {"--outdir", "--config", "--embedding_path", "--vae",
                                 "--log_file", "--from_file", "--each_image", "--model"}


@pytest.mark.parametrize("value", ["", " "])
@pytest.mark.parametrize("option", PATH_OPTIONS)
def test_every_path_launch_option_refuses_an_empty_or_blank_value(
        option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([option, value])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"dreamline: error: argument {option}") or \
        f"/{option}: " in last
    assert f"{value!r} is an empty path; expected" in last


@pytest.mark.parametrize("line, fragment", [
    ('!switch ""', "!switch: \"\" is an empty path; expected a model name"),
    ("!replay ' '", "!replay: ' ' is an empty path; expected a file of prompt lines"),
    ('!fetch ""', "!fetch: \"\" is an empty path; expected a PNG file"),
])
def test_a_command_refuses_an_empty_path(tmp_path: Path, line: str, fragment: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text(line + "\n", encoding="utf-8")
    assert main(["-o", str(tmp_path), "--from_file", str(lines)]) == 1
    assert f"error: {fragment}" in capsys.readouterr().err
