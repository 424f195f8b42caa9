"""The one sampler table: every name a sampler goes by, and what it is.

Torch-free, so the parser, help, completion and metadata can use it without loading a model.
The request's allowed values (``request.SAMPLERS``), the scheduler factory (core/schedule.py),
A1111's and ComfyUI's names in both directions, and which schedule types each sampler takes are
all derived from ``TABLE``.

Names: ours are the reference program's (InvokeAI 2.0 ``-A``), and A1111's own aliases for the
DPM++ family (``k_dpmpp_2m``); A1111's are its UI labels (modules/sd_samplers_kdiffusion.py,
without the schedule suffix); ComfyUI's are its ``KSampler`` ``sampler_name`` values.

The diffusers scheduler behind each sampler (``scheduler`` plus ``options``):

- DPM++ 2M: DPMSolverMultistepScheduler, ``dpmsolver++``, order 2 (what A1111 documents);
- DPM++ 2M SDE / 3M SDE: the same class with ``sde-dpmsolver++``, order 2 / 3; its fresh noise
  per step comes from the request's generator;
- DPM++ SDE: DPMSolverSDEScheduler (needs ``torchsde``), k-diffusion's sample_dpmpp_sde; its
  Brownian tree is seeded from the request's generator (core/schedule.py says how);
- DPM++ 2S a: DPMSolverSinglestepScheduler, order 2, ``sde-dpmsolver++``.  diffusers has no
  ancestral singlestep solver; this is its stochastic 2nd-order singlestep one, the closest fit
  (fresh noise from the request's generator at every step, as ancestral sampling draws it).
  Its maths differ from k-diffusion's sample_dpmpp_2s_ancestral, so A1111 pixels differ;
- UniPC, DEIS, LCM, DDPM: UniPCMultistepScheduler (diffusers' default bh2 variant),
  DEISMultistepScheduler, LCMScheduler, DDPMScheduler, with their defaults.

Schedule types (``SCHEDULES``): "model" is the model's own spacing of the sigmas (A1111 calls
it "Uniform"), "karras" and "exponential" respace them (diffusers' use_karras_sigmas /
use_exponential_sigmas).  Only samplers that walk a sigma schedule take the latter two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Our schedule types, and their A1111 labels ("Uniform" is A1111's name for the model's own).
SCHEDULES: tuple[str, ...] = ("model", "karras", "exponential")
SIGMA_SCHEDULES: tuple[str, ...] = SCHEDULES  # what a sampler with a sigma schedule takes
A1111_SCHEDULES: dict[str, str] = {"model": "Uniform", "karras": "Karras",
                                   "exponential": "Exponential"}
# Spellings a user may type for a schedule (--schedule, models.yaml): ours plus "uniform".
SCHEDULE_WORDS: dict[str, str] = {"model": "model", "uniform": "model", "karras": "karras",
                                  "exponential": "exponential"}
# ComfyUI's KSampler ``scheduler`` values that mean one of ours; the others have no equivalent.
COMFY_SCHEDULES: dict[str, str] = {"normal": "model", "karras": "karras",
                                   "exponential": "exponential"}


class ScheduleNameError(ValueError):
    """A schedule type named in some dialect that dreamline has no equivalent for."""


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler: its names and properties.

    ``scheduler`` is the diffusers class name that does the step maths, built with ``options``
    (extra config, as (key, value) pairs).  ``uses_sigmas``: k-diffusion style, the scheduler
    scales the model input and img2img starts from ``z0 + noise * sigma``.  ``schedules``: the
    schedule types it takes ("model" only for the samplers without a sigma schedule).
    ``stochastic``: each step draws fresh noise (from the request's generator).
    ``a1111_automatic``: the schedule A1111's "Automatic" picks for it.  ``aliases``: more
    names that mean the same (ComfyUI's ``_gpu`` variants differ only in where noise is drawn).
    ``max_steps``: the most -s the scheduler can take (None: no limit of its own).
    """

    name: str
    a1111: str
    comfy: str
    scheduler: str
    uses_sigmas: bool
    stochastic: bool = False
    schedules: tuple[str, ...] = SIGMA_SCHEDULES
    options: tuple[tuple[str, Any], ...] = ()
    a1111_automatic: str = "model"
    aliases: tuple[str, ...] = ()
    max_steps: int | None = None  # LCM picks its steps from a 50-step schedule

    @property
    def takes_schedules(self) -> bool:
        """Whether schedule types other than the model's own make sense for it."""
        return len(self.schedules) > 1


_MODEL_ONLY = ("model",)
_DPMPP = "DPMSolverMultistepScheduler"
_SDE = (("algorithm_type", "sde-dpmsolver++"),)

TABLE: tuple[SamplerSpec, ...] = (
    SamplerSpec("ddim", "DDIM", "ddim", "DDIMScheduler", uses_sigmas=False,
                schedules=_MODEL_ONLY),
    SamplerSpec("plms", "PLMS", "plms", "PNDMScheduler", uses_sigmas=False,
                schedules=_MODEL_ONLY),
    SamplerSpec("k_lms", "LMS", "lms", "LMSDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_euler", "Euler", "euler", "EulerDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_euler_a", "Euler a", "euler_ancestral", "EulerAncestralDiscreteScheduler",
                uses_sigmas=True, stochastic=True),
    SamplerSpec("k_heun", "Heun", "heun", "HeunDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_dpm_2", "DPM2", "dpm_2", "KDPM2DiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_dpm_2_a", "DPM2 a", "dpm_2_ancestral", "KDPM2AncestralDiscreteScheduler",
                uses_sigmas=True, stochastic=True),
    SamplerSpec("k_dpmpp_2m", "DPM++ 2M", "dpmpp_2m", _DPMPP, uses_sigmas=False,
                options=(("algorithm_type", "dpmsolver++"), ("solver_order", 2)),
                a1111_automatic="karras"),
    SamplerSpec("k_dpmpp_2m_sde", "DPM++ 2M SDE", "dpmpp_2m_sde", _DPMPP, uses_sigmas=False,
                stochastic=True, options=(*_SDE, ("solver_order", 2)),
                a1111_automatic="exponential", aliases=("dpmpp_2m_sde_gpu",)),
    SamplerSpec("k_dpmpp_sde", "DPM++ SDE", "dpmpp_sde", "DPMSolverSDEScheduler",
                uses_sigmas=True, stochastic=True, a1111_automatic="karras",
                aliases=("dpmpp_sde_gpu",)),
    SamplerSpec("k_dpmpp_2s_a", "DPM++ 2S a", "dpmpp_2s_ancestral",
                "DPMSolverSinglestepScheduler", uses_sigmas=False, stochastic=True,
                # lower_order_final: a first-order last step down to sigma 0 (diffusers turns
                # it on by itself for final_sigmas_type "zero", with a warning, if not given)
                options=(*_SDE, ("solver_order", 2), ("lower_order_final", True)),
                a1111_automatic="karras"),
    SamplerSpec("k_dpmpp_3m_sde", "DPM++ 3M SDE", "dpmpp_3m_sde", _DPMPP, uses_sigmas=False,
                stochastic=True, options=(*_SDE, ("solver_order", 3)),
                a1111_automatic="exponential", aliases=("dpmpp_3m_sde_gpu",)),
    SamplerSpec("unipc", "UniPC", "uni_pc", "UniPCMultistepScheduler", uses_sigmas=False),
    SamplerSpec("deis", "DEIS", "deis", "DEISMultistepScheduler", uses_sigmas=False),
    SamplerSpec("lcm", "LCM", "lcm", "LCMScheduler", uses_sigmas=False, stochastic=True,
                schedules=_MODEL_ONLY, max_steps=50),
    SamplerSpec("ddpm", "DDPM", "ddpm", "DDPMScheduler", uses_sigmas=False, stochastic=True,
                schedules=_MODEL_ONLY),
)

BY_NAME: dict[str, SamplerSpec] = {spec.name: spec for spec in TABLE}
NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE)
SIGMA_NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE if spec.uses_sigmas)
# The samplers that take --karras / --schedule karras|exponential.
SCHEDULED_NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE if spec.takes_schedules)

# A1111 appends the schedule type to the sampler label ("DPM++ 2M Karras") in files written
# before 1.9, and writes a separate "Schedule type" field since.
A1111_SCHEDULE_SUFFIXES: dict[str, str] = {
    f" {label.lower()}": ours for ours, label in A1111_SCHEDULES.items()}


def spec(name: str) -> SamplerSpec:
    """The table row for one of our names; KeyError for an unknown name."""
    return BY_NAME[name]


def a1111_name(name: str, schedule: str = "model") -> str:
    """A1111's label for our sampler with its schedule type as a suffix ('LMS Karras').

    The model's own schedule adds nothing ('LMS'), except where A1111's "Automatic" would pick
    another one for an unsuffixed label: there it is said, 'DPM++ 2M Uniform'.
    """
    row = BY_NAME[name]
    if schedule == "model" and row.a1111_automatic == "model":
        return row.a1111
    return f"{row.a1111} {A1111_SCHEDULES[schedule]}"


def _words(text: str) -> str:
    return " ".join(text.strip().split()).lower()


def resolve(text: str) -> tuple[str, str | None] | None:
    """Our name and schedule (None: not said) for a sampler named in any dialect; None if unknown.

    Accepts our names, A1111's labels with or without a schedule suffix ("Euler a",
    "LMS Karras", "DPM++ 2M SDE Exponential", "DPM++ 2M Uniform") and ComfyUI's names
    ("euler_ancestral", "dpmpp_2m"), case-insensitively.  A suffix the sampler cannot take
    ("DDIM Karras") is not a name.
    """
    wanted = _words(text)
    found = _plain(wanted)
    if found is not None:
        return found, None
    for suffix, schedule in A1111_SCHEDULE_SUFFIXES.items():
        if wanted.endswith(suffix):
            found = _plain(wanted[: -len(suffix)])
            if found is not None and schedule in BY_NAME[found].schedules:
                return found, schedule
    return None


def _plain(wanted: str) -> str | None:
    """Our name for a lower-cased sampler name without a schedule suffix, or None."""
    for row in TABLE:
        if wanted in (row.name, row.a1111.lower(), row.comfy, *row.aliases):
            return row.name
    return None


def schedule_word(text: str) -> str | None:
    """Our schedule for a word a user typed ('uniform', 'Karras'); None if it is not one."""
    return SCHEDULE_WORDS.get(_words(text))


def a1111_schedule(label: str, sampler: str) -> str:
    """Our schedule for A1111's "Schedule type" label, for the sampler it goes with.

    "Automatic" is the sampler's own choice in A1111 (Karras for DPM++ 2M).  Raises
    ScheduleNameError for a schedule type dreamline lacks ("Polyexponential", "Align Your
    Steps", ...).
    """
    wanted = _words(label)
    if wanted == "automatic":
        return BY_NAME[sampler].a1111_automatic
    for ours, known in A1111_SCHEDULES.items():
        if wanted == known.lower():
            return ours
    raise ScheduleNameError(f"A1111 schedule type {label!r} has no dreamline equivalent; "
                            f"expected Automatic, {', '.join(A1111_SCHEDULES.values())}")


def comfy_schedule(name: str) -> str:
    """Our schedule for ComfyUI's KSampler ``scheduler`` value ('karras', 'normal').

    Raises ScheduleNameError for the ones dreamline has no equivalent for ('simple',
    'sgm_uniform', 'ddim_uniform', 'beta', ...), naming those it takes.
    """
    found = COMFY_SCHEDULES.get(_words(name))
    if found is None:
        raise ScheduleNameError(f"ComfyUI scheduler {name!r} has no dreamline equivalent; "
                                f"expected one of {', '.join(COMFY_SCHEDULES)}")
    return found


def resolve_comfy(sampler_name: str, scheduler: str) -> tuple[str, str] | None:
    """Our sampler and schedule for ComfyUI's ``sampler_name`` and ``scheduler`` pair; None for
    an unknown sampler.  Raises ScheduleNameError for a scheduler without an equivalent."""
    found = resolve(sampler_name)
    if found is None:
        return None
    return found[0], comfy_schedule(scheduler)
