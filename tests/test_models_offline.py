"""The hub libraries' offline switch is an explicit call, not an import side effect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dreamline.models.offline import OFFLINE_VARIABLES, go_offline

SRC = Path(__file__).resolve().parents[1] / "src"


def test_importing_the_loader_leaves_the_environment_alone() -> None:
    env = {key: value for key, value in os.environ.items() if key not in OFFLINE_VARIABLES}
    env["PYTHONPATH"] = str(SRC)
    code = ("import os, dreamline.models.loader, dreamline.models.manager; "
            "print([os.environ.get(k) for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')])")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[None, None]"


def test_go_offline_sets_the_switches_even_after_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    for name in OFFLINE_VARIABLES:
        monkeypatch.setenv(name, "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    go_offline()
    assert all(os.environ[name] == "1" for name in OFFLINE_VARIABLES)
    assert constants.HF_HUB_OFFLINE is True
