"""The runner with a fake generator: saving as images finish, Ctrl-C, failures, grids and
intermediates, without loading a model."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from dreamline.core.types import GeneratedImage, RunInfo, StartInfo, StepInfo
from dreamline.errors import ImageError
from dreamline.repl.context import CommandInterrupted
from dreamline.repl.fetch import read_command
from dreamline.outputs import strip_zoom
from dreamline.repl.runner import Runner
from dreamline.repl.settings import Settings
from dreamline.request import Request


class FakeGenerator:
    """Yields solid images with seeds 10, 11, ...; can stop with an exception after some."""

    def __init__(self, stop_after: int | None = None,
                 stop_with: BaseException | None = None) -> None:
        self.stop_after = stop_after
        self.stop_with = stop_with
        self.decoded = 0
        self.previewed = 0

    def iter_generate(self, request: Request, *, init: Any = None,
                      on_step: Callable[[StepInfo], None] | None = None,
                      on_start: Callable[[StartInfo], None] | None = None
                      ) -> Iterator[GeneratedImage]:
        for index in range(request.iterations):
            if self.stop_after is not None and index == self.stop_after:
                assert self.stop_with is not None
                raise self.stop_with
            if on_start is not None:
                on_start(StartInfo(0, request.steps, request.steps, 1.0, torch.zeros(1, 4, 1, 1)))
            for step in range(request.steps):
                if on_step is not None:
                    on_step(StepInfo(step, request.steps, 1.0, 1.0, torch.zeros(1, 4, 1, 1)))
            seed = 10 + index
            info = RunInfo(request.sampler, "model", 16, 16, request.steps, request.steps, 0,
                           None, None, None, "fake", "0123456789", 0.01)
            exact = request.with_changes(seed=seed, iterations=1, width=16, height=16)
            yield GeneratedImage(Image.new("RGB", (16, 16), (index * 40, 0, 0)), seed, exact, info)

    def decode(self, latents: Any) -> Image.Image:
        self.decoded += 1
        return Image.new("RGB", (16, 16), (0, self.decoded * 20, 0))

    def preview(self, latents: Any) -> Image.Image:
        self.previewed += 1
        return Image.new("RGB", (16, 16), (0, 0, self.previewed * 20))


def make_runner(tmp_path: Path, generator: FakeGenerator, **settings: Any
                ) -> tuple[Runner, list[str]]:
    lines: list[str] = []
    runner = Runner(Settings(outdir=tmp_path, **settings), lambda: generator, say=lines.append,
                    progress_stream=io.StringIO())
    return runner, lines


def run(runner: Runner, request: Request) -> list[tuple[Path, int]]:
    saved: list[tuple[Path, int]] = []
    runner.run(request, lambda path, seed: saved.append((path, seed)))
    return saved


def test_each_image_saved_and_listed(tmp_path: Path) -> None:
    runner, lines = make_runner(tmp_path, FakeGenerator())
    saved = run(runner, Request(prompt="a fox", steps=2, iterations=2))
    assert [(p.name, s) for p, s in saved] == [("000001.10.png", 10), ("000001.11.png", 11)]
    assert lines[0] == "Outputs:"
    assert lines[1].startswith(f"[1.1] {tmp_path / '000001.10.png'}: \"a fox\" -s 2 -S 10")
    assert read_command(saved[0][0]) == lines[1].split(": ", 1)[1]
    assert lines[-1].startswith(">> 2 image(s) in ")
    assert "[1.1]" in (tmp_path / "invoke_log.txt").read_text()


def test_ctrl_c_keeps_finished_images(tmp_path: Path) -> None:
    runner, lines = make_runner(tmp_path, FakeGenerator(1, KeyboardInterrupt()))
    saved: list[tuple[Path, int]] = []
    with pytest.raises(CommandInterrupted):  # after saving and saying: the caller decides
        runner.run(Request(prompt="a fox", steps=2, iterations=3),
                   lambda path, seed: saved.append((path, seed)))
    assert [p.name for p, _ in saved] == ["000001.10.png"]
    assert lines[0] == "Outputs:" and lines[1].startswith("[1] ")
    assert lines[-1] == ">> interrupted: generation stopped; kept 1 finished image(s)"


def test_failure_lists_finished_images_then_raises(tmp_path: Path) -> None:
    runner, lines = make_runner(tmp_path, FakeGenerator(1, RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        run(runner, Request(prompt="a fox", steps=2, iterations=3))
    assert (tmp_path / "000001.10.png").is_file()
    assert lines[:2][0] == "Outputs:" and "000001.10.png" in lines[1]


def test_failure_before_any_image_uses_no_file_number(tmp_path: Path) -> None:
    runner, lines = make_runner(tmp_path, FakeGenerator(0, ImageError("cannot read x.png")))
    with pytest.raises(ImageError):
        run(runner, Request(prompt="a fox", steps=2))
    assert lines == []  # the error line is the session's; no "0 image(s)" summary
    runner, _ = make_runner(tmp_path, FakeGenerator())
    saved = run(runner, Request(prompt="a fox", steps=2))
    assert [p.name for p, _ in saved] == ["000001.10.png"]


def test_grid_written_with_a_command_for_the_whole_grid(tmp_path: Path) -> None:
    runner, lines = make_runner(tmp_path, FakeGenerator())
    run(runner, Request(prompt="a fox", steps=2, iterations=3, seed=10, grid=True))
    grid = tmp_path / "000001.10.grid.png"
    assert grid.is_file() and Image.open(grid).size == (48, 16)  # 1 row of 3
    assert any(line.startswith(f"[1.4] {grid}: ") and "-n 3 -g" in line for line in lines)
    assert not any(" -g" in line for line in lines[1:4])  # single images do not carry -g
    with Image.open(grid) as image:  # A1111 readers find the first image's settings
        assert "Seed: 10," in image.text["parameters"]


def test_intermediates_every_n_steps_and_strip(tmp_path: Path) -> None:
    generator = FakeGenerator()
    runner, _ = make_runner(tmp_path, generator)
    run(runner, Request(prompt="a fox", steps=5, save_intermediates=2))
    folder = tmp_path / "intermediates" / "000001.10"
    assert sorted(p.name for p in folder.iterdir()) == \
        ["step-0000.png", "step-0002.png", "step-0004.png", "step-0005.png", "strip.png"]
    strip = Image.open(folder / "strip.png")  # start + 3 steps of 16 px, side by side, blown up
    assert strip.width == 4 * 16 * strip_zoom(16) and strip.height > 16 * strip_zoom(16)
    assert (generator.previewed, generator.decoded) == (4, 0)  # cheap previews by default


def test_decode_intermediates_uses_full_decodes(tmp_path: Path) -> None:
    generator = FakeGenerator()
    runner, _ = make_runner(tmp_path, generator)
    run(runner, Request(prompt="a fox", steps=4, iterations=2, save_intermediates=2,
                        decode_intermediates=True))
    for seed in (10, 11):  # each image its own folder: start, step 2, step 4 (the last)
        folder = tmp_path / "intermediates" / f"000001.{seed}"
        assert sorted(p.name for p in folder.iterdir()) == \
            ["step-0000.png", "step-0002.png", "step-0004.png", "strip.png"]
    assert (generator.previewed, generator.decoded) == (0, 6)
    assert Image.open(tmp_path / "intermediates" / "000001.11" / "step-0000.png"
                      ).getpixel((0, 0)) == (0, 80, 0)  # the 4th decode: image 2's start


def test_prompt_as_dir_and_per_line_outdir(tmp_path: Path) -> None:
    runner, _ = make_runner(tmp_path, FakeGenerator(), prompt_as_dir=True)
    saved = run(runner, Request(prompt="a red fox", steps=1))
    assert saved[0][0].parent == tmp_path / "a_red_fox"
    other = tmp_path / "other"
    saved = run(runner, Request(prompt="a cat", steps=1, outdir=str(other)))
    assert saved[0][0].parent == other / "a_cat"


