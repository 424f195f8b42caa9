"""Path launch options are checked when dreamline starts (exit status 2, one line naming the
option and the path), and ``~`` is expanded in every path launch option and path switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dreamline.cli import build_parser, main
from dreamline.parse import parse_line
from dreamline.repl.runner import Runner
from dreamline.repl.settings import Settings
from dreamline.request import Request


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


@pytest.mark.parametrize("option, make, expected", [
    ("-o", "file", "-o/--outdir '{p}' is a file; expected a directory"),
    ("-o", "under_file", "-o/--outdir '{p}' cannot be created: '{base}' is a file"),
    ("--log_file", "dir", "--log_file '{p}' is a directory; expected a file path"),
    ("--log_file", "under_file", "--log_file's folder '{parent}' is a file; expected a directory"),
    ("--embedding_path", "missing", "--embedding_path '{p}' does not exist; expected an "
                                    "embedding file or folder"),
    ("--vae", "missing", "--vae '{p}' does not exist; expected a VAE file"),
])
def test_a_bad_path_launch_option_stops_the_launch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, make: str,
        expected: str) -> None:
    base = tmp_path / "a-file"
    base.write_text("x")
    path = {"file": base, "under_file": base / "sub", "dir": tmp_path,
            "missing": tmp_path / "no-such"}[make]
    argv = [option, str(path)]
    if option != "-o":
        argv += ["-o", str(tmp_path / "out")]
    line = refusal(argv, capsys)
    assert line.startswith("dreamline: error: " + expected.format(p=path, base=base,
                                                                  parent=path.parent))


def test_a_folder_that_cannot_be_made_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(["-o", "/proc/dreamline-no-such/x"], capsys)
    assert line.startswith("dreamline: error: -o/--outdir '/proc/dreamline-no-such/x' cannot be "
                           "created")


def test_the_check_leaves_no_folder_behind(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from dreamline.launch_paths import check_launch_paths

    args = build_parser().parse_args(["-o", str(tmp_path / "a" / "b")])
    check_launch_paths(args)
    assert list(tmp_path.iterdir()) == []


def test_home_is_expanded_in_launch_options(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(["-o", "~/out", "--log_file", "~/err.log", "--vae", "~/v",
                                      "--embedding_path", "~/e", "-c", "~/m.yaml",
                                      "--model", "~/m.ckpt", "--from_file", "~/lines.txt"])
    assert args.outdir == tmp_path / "out" and args.log_file == tmp_path / "err.log"
    assert args.vae == tmp_path / "v" and args.embedding_path == [tmp_path / "e"]
    assert args.config == tmp_path / "m.yaml"
    assert args.model == os.path.join(str(tmp_path), "m.ckpt")
    assert args.from_file == os.path.join(str(tmp_path), "lines.txt")


def test_home_is_expanded_in_a_lines_outdir(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    request = parse_line("a cat -o ~/out", Request()).request
    runner = Runner(Settings(outdir=tmp_path / "default"), lambda: None)
    assert runner.outdir_for(request) == tmp_path / "out"


def test_an_embedding_path_file_that_is_no_embedding_stops_the_launch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new user's finding: such a file made every line fail with the same error."""
    bad = tmp_path / "notreally.pt"
    bad.write_text("not a torch file")
    line = refusal(["--embedding_path", str(bad), "-o", str(tmp_path / "out"), "--from_file",
                    "-"], capsys)
    assert line.startswith("dreamline: error: ") and "notreally.pt" in line
