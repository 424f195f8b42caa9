"""The denoising loop, alone (k-diffusion's shape): ``sample(predict_noise, x, schedule)``.

For each scheduler call: scale the input, ask ``predict_noise`` for the model's prediction, let
the schedule take the step, report progress.  Guidance and the UNet live in ``predict_noise``
(guidance.py) and every scheduler detail in the ``Schedule`` (schedule.py), so the loop knows
about neither prompts nor diffusers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dreamline.core.schedule import Schedule
from dreamline.core.types import StepInfo

# (x_scaled (1, 4, h, w), timestep) -> the model's noise prediction, same shape (for a
# v-prediction model its v; the schedule is configured to read it).
PredictNoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OnStep = Callable[[StepInfo], None]
# (sample after scheduler call ``call``, call) -> the sample to continue from.
AfterStep = Callable[[torch.Tensor, int], torch.Tensor]


def sample(predict_noise: PredictNoise, x: torch.Tensor, schedule: Schedule, *,
           generator: torch.Generator | None = None, on_step: OnStep | None = None,
           after_step: AfterStep | None = None) -> torch.Tensor:
    """Run the loop from ``x`` (1, 4, h, w) over ``schedule``; return the final latents.

    ``after_step(x, call)`` may replace the sample after each scheduler call (inpainting's kept
    region).  ``on_step`` is called once per sampling step (``schedule.steps_run`` times), when
    the step is complete, with the sigma and timestep the step started from.  ``generator``
    feeds the stochastic samplers.
    """
    last_call = len(schedule.timesteps) - 1
    step = 0
    step_sigma: float | None = None
    step_timestep = 0.0
    starts_step = True
    for call, t in enumerate(schedule.timesteps):
        model_input = schedule.scale_input(x, t)
        if starts_step:
            sigma = schedule.input_sigma()
            step_sigma = None if sigma is None else float(sigma)
            step_timestep = float(t)
        x = schedule.step(predict_noise(model_input, t), t, x, call, generator)
        if after_step is not None:
            x = after_step(x, call)
        starts_step = schedule.finishes_step() or call == last_call
        if starts_step:
            if on_step is not None:
                on_step(StepInfo(index=step, total=schedule.steps_run, sigma=step_sigma,
                                 timestep=step_timestep, latents=x))
            step += 1
    return x
