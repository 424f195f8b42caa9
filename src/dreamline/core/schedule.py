"""The diffusers seam: every use of a scheduler's internals lives here, and only here.

A ``Schedule`` is a diffusers scheduler set to the request's steps plus the slice of its
timesteps this run takes.  The loop (loop.py) only calls its public methods: ``scale_input``,
``step``, ``input_sigma`` and ``finishes_step``.  What this module relies on beyond diffusers'
public API (tests/test_schedule_contract.py checks each item, per scheduler family, against the
pinned diffusers 0.42.x, and says "diffusers changed X" when one breaks):

- Heun, DPM2, DPM2 a: ``state_in_first_order`` (two calls per sampling step); DPM2's
  ``sigmas_interpol`` (the midpoint sigma of the second call; DPM2 a indexes it one behind);
- PLMS (PNDMScheduler with ``skip_prk_steps``): the timestep layout ``[T0, T1, T1, T2, ...]``
  and ``counter`` (1 after the first, predictor, call);
- LMS: ``step(order=...)``, ramped here from the first step *run* (diffusers counts from the
  start of the full schedule, so a sliced img2img run would start at 4th order);
- Euler a: no Karras or exponential option, so it borrows Euler's ``sigmas``/``timesteps``;
- every k sampler: ``sigmas``, ``step_index``, ``order`` and ``set_begin_index``;
  DDIM/PLMS/DDPM/LCM: ``add_noise``, ``alphas_cumprod``;
- DPM++ SDE (DPMSolverSDEScheduler): two calls per step like Heun (``state_in_first_order``),
  its second call's input sigma ``mid_point_sigma``, and ``noise_sampler`` /
  ``noise_sampler_seed``: the Brownian tree is built at the first step from that seed, which
  is set here from the request's generator (``brownian_seed``);
- DPM++ 2M/2M SDE/3M SDE, 2S a, UniPC, DEIS: the sigmas are a VP schedule (input not scaled,
  ``init_noise_sigma`` 1), so img2img and inpainting noise with ``add_noise``, which reads the
  sigma at ``begin_index``/``step_index`` once ``set_begin_index`` was called;
- v-prediction: every scheduler's ``prediction_type`` config, except PLMS: diffusers' PNDM
  combines the raw v outputs of several steps and converts the sum to noise once, at the current
  sample, which is not the noise the steps predicted (a perfect v predictor does not land on the
  clean latent).  So for PLMS each call's v is turned into noise here, at its own sample and
  timestep, as CompVis' PLMS sampler does, and the scheduler runs as an epsilon one.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import torch
import diffusers
from diffusers import (
    DPMSolverSDEScheduler,
    EulerDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)

from dreamline import samplers as sampler_table
from dreamline.quiet import quiet_library
from dreamline.request import RequestError

# The diffusers classes named in the sampler table (DPMSolverSDEScheduler needs torchsde).
SCHEDULERS: dict[str, Any] = {spec.name: getattr(diffusers, spec.scheduler)
                              for spec in sampler_table.TABLE}
# Samplers whose scheduler walks a k-diffusion sigma schedule (img2img starts at
# z0 + noise * sigma, the model input is scaled).
SIGMA_SAMPLERS = frozenset(sampler_table.SIGMA_NAMES)
# What the UNet predicts: the noise (SD 1.x) or v (v-prediction fine-tunes).
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction")
LMS_ORDER = 4  # the order of k_lms, as in k-diffusion and the reference program
# The config option that respaces a scheduler's sigmas, per schedule type.
SCHEDULE_OPTIONS: dict[str, str] = {"karras": "use_karras_sigmas",
                                    "exponential": "use_exponential_sigmas"}
BROWNIAN_SEED_MAX = 2**63 - 1  # DPM++ SDE's Brownian tree seed is drawn below this


def make_scheduler(sampler: str, scheduler_config: dict[str, Any], *, karras: bool = False,
                   prediction_type: str | None = None, schedule: str = "model"
                   ) -> tuple[Any, str]:
    """A fresh scheduler for ``sampler`` built from the model's schedule, and the schedule type
    it runs ("model", "karras" or "exponential"; ``karras=True`` is short for
    ``schedule="karras"``).

    ``prediction_type`` ("epsilon" or "v_prediction") overrides the config's; None keeps it.
    Raises RequestError for an unknown sampler or a schedule type the sampler cannot take,
    ValueError for an unknown prediction type.  A fresh scheduler per image matters:
    schedulers keep state (multistep ones their previous outputs).
    """
    if sampler not in SCHEDULERS:
        raise RequestError(f"-A/--sampler: {sampler!r} is not a sampler; expected one of "
                           f"{', '.join(SCHEDULERS)}")
    if karras:
        schedule = "karras"
    row = sampler_table.spec(sampler)
    if schedule not in row.schedules:
        takes = ", ".join(sampler_table.SCHEDULED_NAMES)
        switch = "--karras" if karras else f"--schedule {schedule}"
        raise RequestError(f"{switch}: the {sampler} sampler has no sigma schedule to respace; "
                           f"expected one of {takes}")
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction type {prediction_type!r}; expected one of "
                         f"{', '.join(PREDICTION_TYPES)}")
    cls = SCHEDULERS[sampler]
    # Only what the class takes: diffusers warns about the rest (PNDM's skip_prk_steps for LCM).
    config = {key: value for key, value in scheduler_config.items()
              if not key.startswith("_") and key in _init_parameters(cls)}
    overrides: dict[str, Any] = dict(row.options)
    if prediction_type is not None:
        overrides["prediction_type"] = prediction_type
    if sampler == "plms":
        overrides["skip_prk_steps"] = True
    option = SCHEDULE_OPTIONS.get(schedule)
    if option is not None and option in _init_parameters(cls):
        overrides[option] = True
    with quiet_library("diffusers"):
        scheduler = cls.from_config(config, **overrides)
    return scheduler, schedule


@cache
def _init_parameters(cls: Any) -> frozenset[str]:
    return frozenset(inspect.signature(cls).parameters)


@cache
def _takes_generator(cls: Any) -> bool:
    """Whether the class's step draws noise (ancestral and SDE samplers, DDPM, LCM)."""
    return "generator" in inspect.signature(cls.step).parameters


def _borrow_sigmas(scheduler: Any, steps: int, schedule: str) -> None:
    """Give a scheduler without the option (Euler ancestral) Euler's respaced schedule.

    Its step only reads ``sigmas``/``timesteps``, so the same sigmas mean the same schedule.
    """
    donor = EulerDiscreteScheduler.from_config(scheduler.config,
                                               **{SCHEDULE_OPTIONS[schedule]: True})
    with quiet_library("diffusers"):
        donor.set_timesteps(steps)
    scheduler.sigmas = donor.sigmas.clone()
    scheduler.timesteps = donor.timesteps.clone()


def _brownian(scheduler: Any) -> bool:
    """DPM++ SDE's scheduler: noise from a seeded Brownian tree, a midpoint second call."""
    return isinstance(scheduler, DPMSolverSDEScheduler)


def brownian_seed(generator: torch.Generator | None) -> int:
    """The seed of DPM++ SDE's Brownian tree: one integer drawn from the image's generator
    (``torch.randint(0, 2**63 - 1)``) just before the first step, after the noise was drawn, so
    the same seed gives the same image; 0 without a generator."""
    if generator is None:
        return 0
    return int(torch.randint(0, BROWNIAN_SEED_MAX, (1,), generator=generator).item())


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


@dataclass
class Schedule:
    """A scheduler set to ``steps`` and the part of its timesteps this run will take."""

    scheduler: Any
    sampler: str
    steps: int
    timesteps: torch.Tensor  # the slice to run, in order (one entry per scheduler call)
    start_step: int  # sampling steps skipped (0 for txt2img and strength 1)
    steps_run: int  # sampling steps taken
    prediction_type: str = "epsilon"  # what the model's output is: "epsilon" or "v_prediction"
    noise_from_v: bool = False  # PLMS with v: each call's v is made noise before the step

    @classmethod
    def full(cls, scheduler: Any, sampler: str, steps: int, *, karras: bool = False,
             device: torch.device | str | None = None, schedule: str = "model") -> Schedule:
        """The whole schedule of ``steps`` sampling steps (txt2img, or strength 1), from a
        fresh scheduler (as make_scheduler builds it, with the same ``schedule``; it is set up
        in place).  ``karras=True`` is short for ``schedule="karras"``."""
        if karras:
            schedule = "karras"
        with quiet_library("diffusers"):
            scheduler.set_timesteps(steps, device=device)
        option = SCHEDULE_OPTIONS.get(schedule)
        if option is not None and option not in scheduler.config:
            _borrow_sigmas(scheduler, steps, schedule)
            if device is not None:
                scheduler.timesteps = scheduler.timesteps.to(device)
        if sampler not in SIGMA_SAMPLERS and hasattr(scheduler, "set_begin_index"):
            # add_noise then reads the sigma by position, not by a timestep that Karras or
            # exponential sigmas may repeat (multistep DPM++, UniPC, DEIS), as diffusers does.
            scheduler.set_begin_index(0)
        prediction_type = str(scheduler.config.prediction_type)
        noise_from_v = isinstance(scheduler, PNDMScheduler) and prediction_type == "v_prediction"
        if noise_from_v:  # see the module docstring: step() hands PNDM noise
            scheduler.register_to_config(prediction_type="epsilon")
        return cls(scheduler, sampler, steps, scheduler.timesteps, 0, steps, prediction_type,
                   noise_from_v)

    def sliced(self, steps_run: int) -> Schedule:
        """Keep only the last ``steps_run`` sampling steps, as diffusers' img2img does.

        Multi-order schedulers (Heun, DPM2) have ``order`` timesteps per sampling step, so the
        cut is at ``start * order``; the scheduler is told where it begins.  PLMS is rebuilt
        instead (see ``_plms_slice``).
        """
        start = self.steps - steps_run
        if self.sampler == "plms":
            return replace(self, timesteps=_plms_slice(self.timesteps, start), start_step=start,
                           steps_run=steps_run)
        begin = start * self._order
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(begin)
        return replace(self, timesteps=self.timesteps[begin:], start_step=start,
                       steps_run=steps_run)

    @property
    def _order(self) -> int:
        return int(getattr(self.scheduler, "order", 1))

    @property
    def uses_sigmas(self) -> bool:
        return self.sampler in SIGMA_SAMPLERS

    # --- start points ---------------------------------------------------------------------------

    def start_sigma(self) -> torch.Tensor:
        """The sigma of the first timestep run: img2img starts from z0 + noise * this."""
        return self.scheduler.sigmas[self.start_step * self._order]

    def noise_init(self, init_latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The img2img starting point: the init latents noised to the first timestep run.

        The forward (noising) process is the same whatever the UNet predicts (noise or v).
        """
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
        Like ``noise_init``, independent of the prediction type.
        """
        if index + 1 >= len(self.timesteps):
            return init_latents
        if self.uses_sigmas:
            sigma = self.input_sigma()
            if sigma is None:
                raise RuntimeError(f"{self.sampler}: no sigma after scheduler call {index}")
            return init_latents + noise * sigma.to(device=noise.device, dtype=noise.dtype)
        return self.scheduler.add_noise(init_latents, noise, self.timesteps[index + 1:index + 2])

    # --- what the loop calls --------------------------------------------------------------------

    def scale_input(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet's input for the sample ``x`` at timestep ``t`` (k samplers divide by
        sqrt(sigma**2 + 1)); call it before ``input_sigma`` at each call."""
        return self.scheduler.scale_model_input(x, t)

    def step(self, model_output: torch.Tensor, t: torch.Tensor, x: torch.Tensor, call: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """The sample after scheduler call number ``call`` (0-based, within this run).

        ``generator`` feeds the stochastic samplers' fresh noise.  k_lms ramps its order from
        the first step run, like k-diffusion.  ``model_output`` is the model's prediction of
        ``prediction_type``.
        """
        if self.noise_from_v:
            alpha = self.scheduler.alphas_cumprod[int(t)].to(device=x.device, dtype=x.dtype)
            model_output = alpha**0.5 * model_output + (1 - alpha) ** 0.5 * x
        extra: dict[str, Any] = {}
        if _takes_generator(self.scheduler.__class__):
            extra["generator"] = generator
        if isinstance(self.scheduler, LMSDiscreteScheduler):
            extra["order"] = min(LMS_ORDER, call + 1)
        if _brownian(self.scheduler) and self.scheduler.noise_sampler is None:
            # Its Brownian tree is built at the first step from noise_sampler_seed (a random
            # seed when None): seed it from the request's generator instead.
            self.scheduler.noise_sampler_seed = brownian_seed(generator)
        with warnings.catch_warnings():
            # torchsde complains when the float32 smallest sigma diffusers asks the tree about
            # rounds a hair below the float64 bound it built the tree with; harmless noise.
            warnings.filterwarnings("ignore", message="Should have ta>=t0", category=UserWarning)
            return self.scheduler.step(model_output, t, x, return_dict=False, **extra)[0]

    def input_sigma(self) -> torch.Tensor | None:
        """The sigma of the sample the scheduler expects at its next call (None for DDIM/PLMS).

        It is the sigma ``scale_model_input`` divides by: the table entry at ``step_index``,
        except inside a DPM2 step, whose second call evaluates at the interpolated (midpoint)
        sigma, and inside a DPM++ SDE step (its ``mid_point_sigma``).
        """
        scheduler = self.scheduler
        sigmas = getattr(scheduler, "sigmas", None)
        index = getattr(scheduler, "step_index", None)
        if not self.uses_sigmas or sigmas is None or index is None:
            return None
        if _brownian(scheduler) and not scheduler.state_in_first_order:
            return torch.as_tensor(scheduler.mid_point_sigma)  # its second call's midpoint
        interpolated = getattr(scheduler, "sigmas_interpol", None)
        if interpolated is not None and not scheduler.state_in_first_order:
            # The ancestral variant indexes its midpoints one behind (see its scale_model_input).
            behind = 1 if isinstance(scheduler, KDPM2AncestralDiscreteScheduler) else 0
            return interpolated[index - behind]
        if index >= len(sigmas):
            return None
        return sigmas[index]

    def finishes_step(self) -> bool:
        """Whether the scheduler call just made completed a sampling step.

        Heun and DPM2 take two calls per step (the first leaves them mid-step); PLMS's first
        step is a predictor call followed by a corrector call that redoes it.
        """
        scheduler = self.scheduler
        if hasattr(scheduler, "state_in_first_order"):
            return bool(scheduler.state_in_first_order)
        if isinstance(scheduler, PNDMScheduler):
            return int(self.scheduler.counter) != 1
        return True
