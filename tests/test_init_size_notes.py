"""-W/-H with an init image: as in the reference (dream-cli.md: "for img2img only used with
--fit"), an init image keeps its own size without --fit.  That is now said once per line, and
no size that does not run is printed (--dry_run printed the ignored -W/-H as if used)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from core_fixtures import tiny_model, write_image
from dreamline.core import Generator
from dreamline.parse import parse_line
from dreamline.repl.inputs import run_size, unused_size_note
from dreamline.repl.runner import Runner
from dreamline.repl.settings import Settings
from dreamline.request import Request
from dreamline.throughput import STORE_FILE_NAME, ThroughputStore


@pytest.mark.parametrize("line, note", [
    ("a -I x.png -W 128 -H 32", ">> -W 128 -H 32 not used: without --fit an init image keeps "
                                "its own size, 64x64; add --fit to fit it inside -W x -H"),
    ("a -I x.png -H 32", ">> -H 32 not used: without --fit an init image keeps its own size, "
                         "64x64; add --fit to fit it inside -W x -H"),
    ("a -I x.png -W 64 -H 64", None),  # the size that runs: a printed command pasted back
    ("a -I x.png -W 64", None),
    ("a -I x.png", None),
    ("a -I x.png -W 128 -H 32 --fit", None),  # used: the --fit box
])
def test_the_note_names_what_is_not_used_and_the_size_that_runs(line: str,
                                                                 note: str | None) -> None:
    request = parse_line(line, Request()).request
    assert unused_size_note(request, (64, 64)) == note


def dry_run(tmp_path: Path, line: str) -> list[str]:
    events: list[str] = []
    init = write_image(tmp_path, 0)  # 64x64
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    runner = Runner(Settings(outdir=tmp_path / "out"), lambda: Generator(tiny_model()),
                    say=events.append, progress_stream=io.StringIO(), store=store)
    request = parse_line(f"{line} -I {init} -s 4 -S 7 --dry_run", Request()).request
    runner.run(request, lambda path, seed: pytest.fail("nothing is saved"))
    return events


def test_dry_run_says_once_that_w_h_are_not_used_and_prints_the_size_that_runs(
        tmp_path: Path) -> None:
    events = dry_run(tmp_path, "a fox -W 128 -H 32")
    assert sum("not used: without --fit" in line for line in events) == 1
    command = events[-1]
    assert command.startswith(">> dry run, nothing generated; the command: ")
    assert " -W 64 -H 64 " in command and "128" not in command
    assert any(" 1 image at 64x64" in line for line in events if line.startswith(">> estimate"))


def test_dry_run_with_fit_keeps_its_box_and_says_nothing_of_it(tmp_path: Path) -> None:
    events = dry_run(tmp_path, "a fox -W 128 -H 64 --fit")
    assert not any("not used" in line for line in events)
    assert " -W 128 -H 64 " in events[-1] and "--fit" in events[-1]


def test_the_out_of_memory_size_is_the_one_that_runs() -> None:
    model = tiny_model()
    request = Request(prompt="a", width=128, height=32, init_img="x.png")

    class Init:  # what a PreparedInit gives: the image's size
        class image:  # noqa: N801
            size = (64, 48)

    assert run_size(request, model, Init()) == "64x48"
    assert run_size(request.with_changes(init_img=None), model, None) == "128x32"
    assert run_size(Request(prompt="a"), model, None) == \
        f"{model.default_width}x{model.default_height}"
