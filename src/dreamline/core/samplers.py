"""Samplers: which diffusers scheduler does the step maths, and the denoising loop itself.

The loop is ours and small (k-diffusion's shape): for each step, scale the input, ask the
``denoise`` callable for the model output, let the scheduler take the step, report progress.
Guidance and the UNet live in the ``denoise`` callable (see guidance.py), so the loop never knows
about prompts.  img2img is only a slice of the schedule (see ``Schedule.sliced``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)

from dreamline import samplers as sampler_table
from dreamline.core.types import StepInfo
from dreamline.request import RequestError

_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    DDIMScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler, KDPM2DiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler)}
SCHEDULERS: dict[str, type] = {spec.name: _CLASSES[spec.scheduler] for spec in sampler_table.TABLE}
# Samplers whose scheduler walks a sigma schedule (img2img starts at z0 + noise * sigma).
SIGMA_SAMPLERS = frozenset(sampler_table.SIGMA_NAMES)

# (x_scaled, timestep) -> model output (epsilon); guidance and the UNet are inside.
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OnStep = Callable[[StepInfo], None]


LMS_ORDER = 4  # the order of k_lms, as in k-diffusion and the reference program


def steps_to_run(strength: float, steps: int) -> int:
    """img2img's t_enc: floor(strength * steps) after removing float noise (0.29*100 -> 29)."""
    t_enc = math.floor(round(strength * steps, 6))
    if t_enc < 1:
        raise RequestError(
            f"-f/--strength {strength:g} with -s/--steps {steps} runs no sampling steps "
            f"(floor({strength:g} * {steps}) = 0); expected strength * steps >= 1, e.g. "
            f"-f {1 / steps:.4g} or more")
    return t_enc


def make_scheduler(sampler: str, scheduler_config: dict[str, Any], *, karras: bool = False
                   ) -> tuple[Any, str]:
    """A fresh scheduler for ``sampler`` built from the model's schedule; also "model"/"karras".

    Karras sigmas only exist for the k_* samplers; asking for them with ddim/plms is an error
    rather than a silent no-op.  A fresh scheduler per image matters: multistep schedulers keep
    state between steps.
    """
    if sampler not in SCHEDULERS:
        raise RequestError(f"-A/--sampler: {sampler!r} is not a sampler; expected one of "
                           f"{', '.join(SCHEDULERS)}")
    if karras and sampler not in SIGMA_SAMPLERS:
        raise RequestError(f"--karras: the {sampler} sampler has no sigma schedule; Karras sigmas "
                           f"need a k_* sampler ({', '.join(sorted(SIGMA_SAMPLERS))})")
    config = {key: value for key, value in scheduler_config.items() if not key.startswith("_")}
    overrides: dict[str, Any] = {}
    if sampler == "plms":
        overrides["skip_prk_steps"] = True
    cls = SCHEDULERS[sampler]
    if karras and "use_karras_sigmas" in inspect.signature(cls.__init__).parameters:
        overrides["use_karras_sigmas"] = True
    scheduler = cls.from_config(config, **overrides)
    return scheduler, ("karras" if karras else "model")


def _borrow_karras_sigmas(scheduler: Any, steps: int) -> None:
    """Give a scheduler without a Karras option (Euler ancestral) Euler's Karras schedule.

    Its step only reads ``sigmas``/``timesteps``, so the same sigmas mean the same schedule.
    """
    donor = EulerDiscreteScheduler.from_config(scheduler.config, use_karras_sigmas=True)
    donor.set_timesteps(steps)
    scheduler.sigmas = donor.sigmas.clone()
    scheduler.timesteps = donor.timesteps.clone()


@dataclass
class Schedule:
    """A scheduler set to ``steps`` and the part of its timesteps this run will take."""

    scheduler: Any
    sampler: str
    steps: int
    timesteps: torch.Tensor  # the slice to run, in order
    start_step: int  # sampling steps skipped (0 for txt2img and strength 1)
    steps_run: int  # sampling steps taken

    @classmethod
    def full(cls, scheduler: Any, sampler: str, steps: int, *, karras: bool = False,
             device: torch.device | str | None = None) -> "Schedule":
        scheduler.set_timesteps(steps, device=device)
        if karras and "use_karras_sigmas" not in scheduler.config:
            _borrow_karras_sigmas(scheduler, steps)
            if device is not None:
                scheduler.timesteps = scheduler.timesteps.to(device)
        return cls(scheduler, sampler, steps, scheduler.timesteps, 0, steps)

    def sliced(self, steps_run: int) -> "Schedule":
        """Keep only the last ``steps_run`` sampling steps, as diffusers' img2img does.

        Multi-order schedulers (Heun, DPM2) have ``order`` timesteps per sampling step, so the
        cut is at ``start * order``; the scheduler is told where it begins.  PLMS is rebuilt
        instead (see ``_plms_slice``).
        """
        start = self.steps - steps_run
        if self.sampler == "plms":
            timesteps = _plms_slice(self.timesteps, start)
            return Schedule(self.scheduler, self.sampler, self.steps, timesteps, start, steps_run)
        order = int(getattr(self.scheduler, "order", 1))
        begin = start * order
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(begin)
        return Schedule(self.scheduler, self.sampler, self.steps, self.timesteps[begin:], start,
                        steps_run)

    @property
    def uses_sigmas(self) -> bool:
        return self.sampler in SIGMA_SAMPLERS

    def start_sigma(self) -> torch.Tensor:
        """The sigma of the first timestep run: img2img starts from z0 + noise * this."""
        order = int(getattr(self.scheduler, "order", 1))
        return self.scheduler.sigmas[self.start_step * order]

    def noise_init(self, init_latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The img2img starting point: the init latents noised to the first timestep run."""
        if self.uses_sigmas:
            sigma = self.start_sigma().to(device=init_latents.device, dtype=init_latents.dtype)
            return init_latents + noise * sigma
        return self.scheduler.add_noise(init_latents, noise, self.timesteps[:1])

    def pure_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """The starting point without an init image: noise at the scheduler's initial scale."""
        return noise * self.scheduler.init_noise_sigma

    def noised_for_next_call(self, init_latents: torch.Tensor, noise: torch.Tensor,
                             index: int) -> torch.Tensor:
        """``init_latents`` at the noise level of the sample after scheduler call ``index``.

        Inpainting puts this into the kept region after every call, so the next model call sees
        the kept region exactly as noisy as the rest.  k samplers: the sigma the scheduler will
        scale the next input by (DPM2's midpoint is its interpolated sigma, not the next one);
        DDIM/PLMS: ``add_noise`` at the next timestep.  After the last call: the clean latents.
        """
        if index + 1 >= len(self.timesteps):
            return init_latents
        if self.uses_sigmas:
            sigma = input_sigma(self.scheduler)
            if sigma is None:
                raise RuntimeError(f"{self.sampler}: no sigma after scheduler call {index}")
            return init_latents + noise * sigma.to(device=noise.device, dtype=noise.dtype)
        return self.scheduler.add_noise(init_latents, noise, self.timesteps[index + 1:index + 2])


def _step_kwargs(scheduler: Any, generator: torch.Generator | None) -> dict[str, Any]:
    """Pass the request's generator to stochastic steps (ancestral samplers, DDIM with eta)."""
    accepted = inspect.signature(scheduler.step).parameters
    return {"generator": generator} if "generator" in accepted else {}


def _plms_slice(timesteps: torch.Tensor, start: int) -> torch.Tensor:
    """PLMS timesteps for the sampling steps from ``start`` on.

    With ``skip_prk_steps`` the full list is ``[T0, T1, T1, T2, ...]``: its first step is taken
    twice (a predictor, then a corrector that averages two noise estimates).  Cutting that list
    the way the other samplers are cut starts one level too noisy and then skips a level, so the
    img2img run is rebuilt the same way instead: ``[Ts, Ts+1, Ts+1, ..., T_last]``.
    """
    distinct = torch.cat([timesteps[:1], timesteps[2:]])
    run = distinct[start:]
    if len(run) < 2:
        return run
    return torch.cat([run[:2], run[1:]])


def input_sigma(scheduler: Any) -> torch.Tensor | None:
    """The sigma of the sample the scheduler expects at its next call (None for DDIM/PLMS).

    It is the sigma ``scale_model_input`` divides by: the table entry at ``step_index``, except
    inside a DPM2 step, whose second call evaluates at the interpolated (midpoint) sigma.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    index = getattr(scheduler, "step_index", None)
    if sigmas is None or index is None:
        return None
    interpolated = getattr(scheduler, "sigmas_interpol", None)
    if interpolated is not None and not scheduler.state_in_first_order:
        # The ancestral variant indexes its midpoints one behind (see its scale_model_input).
        behind = 1 if isinstance(scheduler, KDPM2AncestralDiscreteScheduler) else 0
        return interpolated[index - behind]
    if index >= len(sigmas):
        return None
    return sigmas[index]


def finishes_step(scheduler: Any) -> bool:
    """Whether the scheduler call just made completed a sampling step.

    Heun and DPM2 take two calls per step (the first leaves them mid-step); PLMS's first step is
    a predictor call followed by a corrector call that redoes it.
    """
    if hasattr(scheduler, "state_in_first_order"):
        return bool(scheduler.state_in_first_order)
    if isinstance(scheduler, PNDMScheduler):
        return int(scheduler.counter) != 1
    return True


def sample(denoise: Denoise, x: torch.Tensor, schedule: Schedule, *,
           generator: torch.Generator | None = None, on_step: OnStep | None = None,
           after_step: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> torch.Tensor:
    """Run the denoising loop from ``x`` over ``schedule``; return the final latents.

    ``after_step(x, call)`` may replace the sample after each scheduler call (inpainting's kept
    region).  ``on_step`` is called once per sampling step (``schedule.steps_run`` times), when
    the step is complete, with the sigma and timestep the step started from.
    """
    scheduler = schedule.scheduler
    extra = _step_kwargs(scheduler, generator)
    last_call = len(schedule.timesteps) - 1
    step = 0
    step_sigma: float | None = None
    step_timestep = 0.0
    starts_step = True
    for call, t in enumerate(schedule.timesteps):
        model_input = scheduler.scale_model_input(x, t)
        if starts_step:
            sigma = input_sigma(scheduler)
            step_sigma = None if sigma is None else float(sigma)
            step_timestep = float(t)
        model_output = denoise(model_input, t)
        if isinstance(scheduler, LMSDiscreteScheduler):
            # k-diffusion's LMS: the order grows from the first step *run*.  diffusers takes it
            # from the position in the full schedule, so a sliced (img2img) run would apply a
            # 4th-order coefficient to the one derivative it has.
            extra["order"] = min(LMS_ORDER, call + 1)
        x = scheduler.step(model_output, t, x, return_dict=False, **extra)[0]
        if after_step is not None:
            x = after_step(x, call)
        starts_step = finishes_step(scheduler) or call == last_call
        if starts_step:
            if on_step is not None:
                on_step(StepInfo(index=step, total=schedule.steps_run, sigma=step_sigma,
                                 timestep=step_timestep, latents=x))
            step += 1
    return x
