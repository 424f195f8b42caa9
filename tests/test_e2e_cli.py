"""`dreamline` as a subprocess against a tiny random-weight model on disk.

Two runs, each a few seconds (mostly importing torch): piped lines with no --from_file, then a
--from_file run that pastes a printed command back and checks the pixels are the same.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamline.repl.fetch import read_command

OUTPUT_LINE = re.compile(r"^\[(?P<label>[\d.]+)\] (?P<path>\S+): (?P<command>.+)$")


def dreamline(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    script = Path(sys.executable).with_name("dreamline")  # the installed console script
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "dreamline.cli"]
    return subprocess.run([*command, *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=240)


def printed_outputs(stdout: str) -> dict[str, tuple[Path, str]]:
    found = {}
    for line in stdout.splitlines():
        match = OUTPUT_LINE.match(line)
        if match:
            found[match["label"]] = (Path(match["path"]), match["command"])
    return found


@pytest.fixture(scope="module")
def piped_run(model_files, tmp_path_factory):  # type: ignore[no-untyped-def]
    outdir = tmp_path_factory.mktemp("piped")
    lines = [
        "# a comment",
        "a red fox -s 3 -S 42",
        "",
        "a cat -s 2 -n 2 -g -S 7",
        "a dog -s 3 -S 5 -I -1 -f 0.5",
        "a hat -G 0.5",
        "a boat -s 2 -S 9",
        "q",
        "after quitting -s 2",
    ]
    result = dreamline("-o", str(outdir), "-c", str(model_files.registry_yaml),
                       stdin="\n".join(lines) + "\n")
    return outdir, result


def test_piped_lines_run_and_write_named_files(piped_run) -> None:  # type: ignore[no-untyped-def]
    outdir, result = piped_run
    outputs = printed_outputs(result.stdout)
    assert "#a red fox -s 3 -S 42" in result.stdout.splitlines()
    assert "invoke>" not in result.stdout  # no prompt drawn when stdin is not a terminal
    assert outputs["1"][0] == outdir / "000001.42.png"
    assert outputs["2.1"][0] == outdir / "000002.7.png"
    assert outputs["2.3"][0] == outdir / "000002.7.grid.png"
    assert outputs["3"][0].name.startswith("000003.5")
    assert outputs["4"][0] == outdir / "000004.9.png"
    for path, command in outputs.values():
        assert path.is_file()
        assert read_command(path) == command  # the metadata holds the printed command
    assert outputs["1"][1] == '"a red fox" -s 3 -S 42 -W 64 -H 64 -C 7.5 -A k_lms'
    # -I -1 took the last image of the previous command
    assert f"-I {outdir / outputs['2.2'][0].name}" in outputs["3"][1]
    assert "#after quitting -s 2" not in result.stdout
    assert result.stdout.rstrip().endswith("goodbye!")
    log = (outdir / "invoke_log.txt").read_text()
    assert f"[1] {outdir / '000001.42.png'}: {outputs['1'][1]}" in log
    assert "## 000001.42.png" in (outdir / "invoke_log.md").read_text()


def test_piped_bad_line_fails_alone_with_a_summary(piped_run) -> None:  # type: ignore
    _, result = piped_run
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert any(line.startswith("error:") and "not supported" in line for line in errors)
    assert "1 line(s) of stdin failed:" in errors
    assert any(line.strip().startswith("line 6: error:") for line in errors)
    assert "Traceback" not in result.stderr


def test_no_library_advice_reaches_the_screen(piped_run) -> None:  # type: ignore
    """The hub libraries' own warnings (e.g. transformers' 'requires torchvision', raised when
    compel is imported) are not the user's business: nothing of theirs on stdout or stderr."""
    _, result = piped_run
    for line in (result.stdout + result.stderr).splitlines():
        assert not line.startswith(("[transformers]", "[diffusers]")), line
        assert "torchvision" not in line, line


def test_from_file_pasted_command_reproduces_pixels(  # type: ignore[no-untyped-def]
        piped_run, model_files, tmp_path) -> None:
    first_outdir, first = piped_run
    path, command = printed_outputs(first.stdout)["1"]
    lines = tmp_path / "lines.txt"
    lines.write_text(f"{command} -q\n{command}\n-I {path} -s 2 -S 1 -f 0.5\n")
    outdir = tmp_path / "again"
    result = dreamline("-o", str(outdir), "--model", str(model_files.diffusers),
                       "--from_file", str(lines), stdin="")
    assert result.returncode == 1
    assert any(line.strip().startswith("line 1: error:") for line in result.stderr.splitlines())
    outputs = printed_outputs(result.stdout)
    copy = outputs["1"][0]
    assert copy == outdir / "000001.42.png" and outputs["1"][1] == command
    original = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(copy).convert("RGB")), original)
    # an empty prompt with -I takes the prompt stored in that image
    assert outputs["2"][1].startswith('"a red fox" -s 2 -S 1')
