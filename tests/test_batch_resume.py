"""The run manifest and --resume (issue 12, item 5), with a fake runner: no model loads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dreamline.batch.launch import BatchPlan, start_lines
from dreamline.batch.manifest import MANIFEST_NAME, Manifest, read_records, source_key
from dreamline.repl.lines import text_lines
from dreamline.repl.context import CommandInterrupted
from dreamline.repl.session import Session
from dreamline.repl.settings import Settings
from dreamline.request import Request


class Models:
    label = "fake"
    device_label = "cpu float32"

    def names(self) -> list[str]:
        return ["tiny"]

    def describe(self) -> list[str]:
        return ["tiny"]

    def default_cfg(self) -> None:
        return None

    def default_sampler(self) -> None:
        return None

    def native_size(self) -> None:
        return None

    def loaded_multiple(self) -> None:
        return None

    def current(self) -> str:
        return "tiny"

    def switch(self, name: str) -> str:
        return name

    def release(self) -> None:
        pass


class Runner:
    """'Saves' one file per image (seed = the line's -S, or 500 + a counter); can stop with
    Ctrl-C at a given prompt, either inside the generation (the real runner then keeps the
    finished images and raises CommandInterrupted) or before it starts."""

    def __init__(self, outdir: Path, *, cut_short: str | None = None,
                 interrupt: str | None = None) -> None:
        self.outdir = outdir
        self.cut_short = cut_short
        self.interrupt = interrupt
        self.requests: list[Request] = []
        self.counter = 0
        self.name_tags: dict[str, str] = {}

    def run(self, request: Request, on_saved) -> None:  # type: ignore[no-untyped-def]
        if request.prompt == self.interrupt:
            raise KeyboardInterrupt
        self.requests.append(request)
        count = 1 if request.prompt == self.cut_short else request.iterations
        for index in range(count):
            self.counter += 1
            seed = request.seed + index if request.seed is not None else 500 + self.counter
            path = self.outdir / f"{self.counter:06d}.{seed}.png"
            path.write_bytes(b"png")
            on_saved(path, seed)
        if request.prompt == self.cut_short:
            raise CommandInterrupted


LINES = ["one -S 11", "!switch tiny", "two -n 2 -S 20", "three -S -1", "# done"]


def run(tmp_path: Path, lines: list[str], *, resume: bool = False,
        **runner_options: str) -> tuple[int, Runner, str]:
    out = io.StringIO()
    runner = Runner(tmp_path, **runner_options)
    session = Session(Settings(outdir=tmp_path), Models(), runner, interactive=False, out=out,
                      err=out)
    source = str(tmp_path / "prompts.txt")
    plan = BatchPlan(source, resume=resume)
    status = session.run_source(start_lines(plan, session, runner, text_lines(lines)),
                                source=source)
    return status, runner, out.getvalue()


def test_each_finished_line_is_recorded_with_its_files(tmp_path: Path) -> None:
    status, _, _ = run(tmp_path, LINES)
    assert status == 0
    records = read_records(tmp_path / MANIFEST_NAME)
    assert [(record["line"], record["text"]) for record in records] == [
        (1, "one -S 11"), (3, "two -n 2 -S 20"), (4, "three -S -1")]  # not the !switch line
    assert records[1]["files"] == [str(tmp_path / "000002.20.png"),
                                   str(tmp_path / "000003.21.png")]
    assert records[1]["seeds"] == [20, 21]
    assert records[2]["command"] == '"three" -s 50 -S 21 -C 7.5 -A k_lms'  # -S -1 resolved
    assert records[0]["source"] == source_key(str(tmp_path / "prompts.txt"))
    assert len({record["run"] for record in records}) == 1


def test_resume_after_ctrl_c_runs_only_the_lines_not_finished(tmp_path: Path) -> None:
    status, first, out = run(tmp_path, LINES, interrupt="three")
    assert status == 130
    assert [request.prompt for request in first.requests] == ["one", "two"]
    assert out.splitlines()[-1] == (f"interrupted at line 4 of {tmp_path / 'prompts.txt'}; the "
                                    "lines after it were not run; run the same command with "
                                    "--resume to finish")
    status, again, out = run(tmp_path, LINES, resume=True)
    assert status == 0
    # line 4 (-S -1) ran again with the seed recalled from the skipped line 3
    assert [(request.prompt, request.seed) for request in again.requests] == [("three", 21)]
    assert ">> line 1 was done by the earlier run" in out
    assert "#!switch tiny" in out  # commands run again: the model is the same as before
    records = read_records(tmp_path / MANIFEST_NAME)
    assert [record["line"] for record in records] == [1, 3, 4]
    assert len({record["run"] for record in records}) == 1


def test_a_line_cut_short_is_not_recorded_and_resume_redoes_it(tmp_path: Path) -> None:
    # Ctrl-C inside line 3 kept 1 of its 2 images and stopped the run there
    assert run(tmp_path, LINES, cut_short="two")[0] == 130
    assert [record["line"] for record in read_records(tmp_path / MANIFEST_NAME)] == [1]
    _, again, _ = run(tmp_path, LINES, resume=True)
    assert [request.prompt for request in again.requests] == ["two", "three"]


def test_a_changed_line_is_not_taken_for_the_done_one(tmp_path: Path) -> None:
    run(tmp_path, LINES)
    changed = ["one -S 12", *LINES[1:]]
    _, again, said = run(tmp_path, changed, resume=True)
    assert [request.prompt for request in again.requests] == ["one"]
    assert ">> line 1 changed since the earlier run finished it; running it again" in said
    assert "line 3 changed" not in said


def test_a_run_without_resume_starts_afresh(tmp_path: Path) -> None:
    run(tmp_path, LINES)
    _, again, _ = run(tmp_path, LINES)
    assert len(again.requests) == 3
    _, resumed, out = run(tmp_path, LINES, resume=True)
    assert resumed.requests == []  # the latest run is the one resumed
    assert ">> --resume: 3 line(s)" in out


def test_resume_with_nothing_recorded_says_so_and_runs_all(tmp_path: Path) -> None:
    status, runner, out = run(tmp_path, LINES, resume=True)
    assert status == 0 and len(runner.requests) == 3
    assert "no finished line of" in out


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    run(tmp_path, LINES)
    path = tmp_path / MANIFEST_NAME
    text = path.read_text()
    path.write_text(text[:-30])  # the last record cut by a crash mid-write
    manifest = Manifest.resume(tmp_path, source_key(str(tmp_path / "prompts.txt")))
    assert sorted(number for number, _ in manifest.done) == [1, 3]


def test_a_manifest_that_cannot_be_written_warns_once_and_the_run_goes_on(
        tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).mkdir()  # not a file: every append fails
    status, runner, out = run(tmp_path, LINES)
    assert status == 0 and len(runner.requests) == 3
    assert out.count("warning: cannot write the manifest") == 1


def test_resume_without_from_file_is_one_line_and_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dreamline.cli import main

    assert main(["-o", str(tmp_path), "--resume"]) == 2
    assert capsys.readouterr().err.strip() == \
        "dreamline: error: --resume: needs --from_file FILE (the lines to run)"


def test_records_are_json_lines(tmp_path: Path) -> None:
    run(tmp_path, LINES[:1])
    (line,) = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert json.loads(line)["files"] == [str(tmp_path / "000001.11.png")]


def test_a_line_without_a_seed_is_recorded_with_the_seed_it_ran(tmp_path: Path) -> None:
    status, _, _ = run(tmp_path, ["no seed here -s 3", "variations -v 0.2 -n 2"])
    assert status == 0
    records = read_records(tmp_path / MANIFEST_NAME)
    assert records[0]["command"].startswith('"no seed here" -s 3 -S 501 ')
    assert records[1]["command"] == "variations -v 0.2 -n 2"  # each file has its own command
