"""diffusers' scheduler warnings ("Changing scheduler {self.config} to have lower_order_final
...") never reach the screen, and DPM++ 2S a's last-step setting is dreamline's own choice."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import dreamline
from dreamline.quiet import quiet_library
from dreamline.core.schedule import Schedule, make_scheduler
from dreamline.request import SAMPLERS

CONFIG = json.loads((Path(dreamline.__file__).parent / "data" / "sd15" / "scheduler"
                     / "scheduler_config.json").read_text())


class Records(logging.Handler):
    """Every record that reaches diffusers' own handlers (which write to the screen)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def shown() -> Iterator[list[str]]:
    library = logging.getLogger("diffusers")  # diffusers' root: it does not propagate
    records = Records()
    library.addHandler(records)
    try:
        yield records.messages
    finally:
        library.removeHandler(records)


@pytest.mark.parametrize("steps", [1, 3, 4])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_building_and_setting_a_scheduler_shows_no_library_warning(
        sampler: str, steps: int, shown: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    scheduler, schedule = make_scheduler(sampler, CONFIG)
    Schedule.full(scheduler, sampler, steps, schedule=schedule)
    assert shown == []
    captured = capfd.readouterr()
    assert "Changing scheduler" not in captured.out + captured.err


def test_dpmpp_2s_a_takes_a_first_order_last_step_by_its_own_setting() -> None:
    scheduler, _ = make_scheduler("k_dpmpp_2s_a", CONFIG)
    assert scheduler.config.lower_order_final is True
    assert scheduler.config.final_sigmas_type == "zero"


def test_a_diffusers_warning_inside_the_quiet_block_is_dropped(shown: list[str]) -> None:
    from diffusers.utils import logging as diffusers_logging

    logger = diffusers_logging.get_logger("diffusers.schedulers.any")
    with quiet_library("diffusers"):
        logger.warning("Changing scheduler {self.config}")
    assert shown == []
    logger.warning("shown again")
    assert shown == ["shown again"]
    assert logging.getLogger("diffusers").level != logging.ERROR  # put back after the block
