"""Every sampler's scheduler can be built in this environment.

diffusers imports some schedulers' own dependencies lazily (LMS needs scipy), so a package that
pyproject.toml forgets to declare only shows when that sampler is first used.  The suite runs in
the isolated venv made by scripts/install.sh, so building each scheduler here catches it.
"""

import json
from pathlib import Path

import pytest

import dreamline
from dreamline.core.schedule import make_scheduler
from dreamline.request import SAMPLERS

SD15_SCHEDULER = (Path(dreamline.__file__).parent / "data" / "sd15" / "scheduler"
                  / "scheduler_config.json")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_builds_and_sets_its_timesteps(sampler: str) -> None:
    config = json.loads(SD15_SCHEDULER.read_text())
    scheduler, _ = make_scheduler(sampler, config)
    scheduler.set_timesteps(10)
    assert len(scheduler.timesteps) >= 10


def test_the_venv_sees_no_system_site_packages() -> None:
    import sys

    cfg = Path(sys.prefix) / "pyvenv.cfg"
    if sys.prefix == sys.base_prefix or not cfg.exists():
        pytest.skip("not running inside a virtual environment")
    assert "include-system-site-packages = true" not in cfg.read_text()
