"""--device and --precision are checked at start-up: one line, then exit status 2 for a file
or piped run, or the best device (automatic precision) at the prompt, as for a bad --model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dreamline.cli import check_device, main
from dreamline.repl.settings import Settings


@pytest.fixture()
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    backend = getattr(torch.backends, "mps", None)
    if backend is not None:
        monkeypatch.setattr(backend, "is_available", lambda: False)


def _lines(tmp_path: Path) -> Path:
    lines = tmp_path / "lines.txt"
    lines.write_text("-h\n")  # a line that needs no model: the device is checked before it
    return lines


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_a_missing_device_stops_a_file_run_at_start_with_status_2(
        tmp_path: Path, device: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path / "out"), "--device", device,
                 "--from_file", str(_lines(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [captured.err.strip()]  # one line
    assert captured.err.startswith(f"dreamline: error: --device: {device!r} is not available")
    assert "usage: <prompt words>" not in captured.out  # no line ran


@pytest.mark.usefixtures("no_gpu")
def test_a_precision_the_device_cannot_run_stops_a_file_run_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path / "out"), "--device", "cpu", "--precision", "float16",
                 "--from_file", str(_lines(tmp_path))]) == 2
    assert capsys.readouterr().err.startswith("dreamline: error: --precision: float16 is not "
                                              "supported on the cpu")


@pytest.mark.usefixtures("no_gpu")
def test_at_the_prompt_a_missing_device_falls_back_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(outdir=tmp_path, device="cuda", precision="float16")
    checked = check_device(settings, interactive=True)
    assert checked is not None and checked.device is None and checked.precision == "auto"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # one line for the device, one for the precision it would have used
    assert err[0].startswith("dreamline: warning: --device: 'cuda' is not available")
    assert err[0].endswith("; going on with cpu instead")


def test_a_device_that_is_there_passes_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(outdir=tmp_path, device="cpu")
    assert check_device(settings, interactive=False) is settings
    assert capsys.readouterr().err == ""
