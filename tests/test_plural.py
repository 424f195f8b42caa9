"""Messages count nouns properly: "1 step", never "1 steps"."""

from __future__ import annotations

import pytest

from dreamline.estimate import Estimate, Plan, format_line
from dreamline.plural import counted
from dreamline.threads import choose_threads


@pytest.mark.parametrize("number, expected", [(0, "0 steps"), (1, "1 step"), (2, "2 steps")])
def test_counted(number: int, expected: str) -> None:
    assert counted(number, "step") == expected


def plan(steps: int, steps_run: int, start: int, img2img: bool) -> Plan:
    return Plan(sampler="k_lms", steps=steps, steps_run=steps_run, start_step=start,
                sigma=None, images=1, size=(64, 64), latent=(8, 8), img2img=img2img)


@pytest.mark.parametrize("made, expected", [
    (plan(1, 1, 0, False), "estimate: 1 step from pure noise, 1 image"),
    (plan(1, 1, 0, True), "estimate: 1 step (strength 1"),
    (plan(2, 1, 1, True), "estimate: 1 of 2 steps (init image inserted at step 1)"),
])
def test_the_estimate_line_says_1_step(made: Plan, expected: str) -> None:
    assert format_line(made, Estimate(None, "unknown")).startswith(expected)


def test_one_core_is_one_core() -> None:
    assert choose_threads(None, environ={}, cores=1, load=0.0)[1] == "1 core, load 0.0: 1 free"
