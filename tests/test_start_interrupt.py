"""Ctrl-C while dreamline starts (importing torch, reading the models file, before the REPL or
the batch has its own handling) exits with status 130 and at most one short line, no traceback."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest

import dreamline.cli as cli
from dreamline import start


def interrupt(*_args: Any, **_kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_ctrl_c_while_the_models_are_read_is_status_130(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "make_model_manager", interrupt)
    assert cli.main(["-o", str(tmp_path)]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.strip().splitlines() == [start.INTERRUPTED_LINE]


def test_ctrl_c_before_the_launch_options_are_read_is_status_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "build_parser", interrupt)
    assert cli.main([]) == 130
    assert capsys.readouterr().err.strip() == start.INTERRUPTED_LINE


def test_ctrl_c_while_importing_the_cli_is_status_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def importing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "dreamline.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "dreamline.cli")
    monkeypatch.setattr(builtins, "__import__", importing)
    assert start.main([]) == 130
    assert capsys.readouterr().err.strip() == start.INTERRUPTED_LINE


def test_the_console_script_is_the_guarded_entry() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'dreamline = "dreamline.start:main"' in pyproject
