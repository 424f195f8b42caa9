"""The one sampler table: every name a sampler goes by, and what it is.

Torch-free, so the parser, help, completion and metadata can use it without loading a model.
The request's allowed values (``request.SAMPLERS``), the scheduler factory (core/schedule.py),
A1111's and ComfyUI's names in both directions, and which samplers walk a sigma schedule (and so
may take Karras sigmas) are all derived from ``TABLE``.

Names: ours are the reference program's (InvokeAI 2.0 ``-A``); A1111's are its UI labels
(modules/sd_samplers_kdiffusion.py, without the schedule suffix); ComfyUI's are its
``KSampler`` ``sampler_name`` values (comfy/samplers.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler: its names and properties.

    ``scheduler`` is the diffusers class name that does the step maths.  ``uses_sigmas``: the
    scheduler walks a sigma schedule, so img2img starts from ``z0 + noise * sigma`` and Karras
    sigmas make sense.  ``stochastic``: each step draws fresh noise (from the request's generator).
    """

    name: str
    a1111: str
    comfy: str
    scheduler: str
    uses_sigmas: bool
    stochastic: bool = False


TABLE: tuple[SamplerSpec, ...] = (
    SamplerSpec("ddim", "DDIM", "ddim", "DDIMScheduler", uses_sigmas=False),
    SamplerSpec("plms", "PLMS", "plms", "PNDMScheduler", uses_sigmas=False),
    SamplerSpec("k_lms", "LMS", "lms", "LMSDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_euler", "Euler", "euler", "EulerDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_euler_a", "Euler a", "euler_ancestral", "EulerAncestralDiscreteScheduler",
                uses_sigmas=True, stochastic=True),
    SamplerSpec("k_heun", "Heun", "heun", "HeunDiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_dpm_2", "DPM2", "dpm_2", "KDPM2DiscreteScheduler", uses_sigmas=True),
    SamplerSpec("k_dpm_2_a", "DPM2 a", "dpm_2_ancestral", "KDPM2AncestralDiscreteScheduler",
                uses_sigmas=True, stochastic=True),
)

BY_NAME: dict[str, SamplerSpec] = {spec.name: spec for spec in TABLE}
NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE)
SIGMA_NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE if spec.uses_sigmas)

# A1111 appends the schedule type to the sampler label ("DPM++ 2M Karras") in files written
# before 1.9, and writes a separate "Schedule type" field since.
A1111_SCHEDULE_SUFFIXES: dict[str, str] = {" karras": "karras"}


def spec(name: str) -> SamplerSpec:
    """The table row for one of our names; KeyError for an unknown name."""
    return BY_NAME[name]


def a1111_name(name: str, schedule: str = "model") -> str:
    """A1111's label for our sampler, with " Karras" for the Karras schedule ('LMS Karras')."""
    label = BY_NAME[name].a1111
    return f"{label} Karras" if schedule == "karras" else label


def resolve(text: str) -> tuple[str, str | None] | None:
    """Our name and schedule (None: not said) for a sampler named in any dialect; None if unknown.

    Accepts our names, A1111's labels with or without a schedule suffix ("Euler a",
    "LMS Karras") and ComfyUI's names ("euler_ancestral"), case-insensitively.
    """
    wanted = " ".join(text.strip().split()).lower()
    found = _plain(wanted)
    if found is not None:
        return found, None
    for suffix, schedule in A1111_SCHEDULE_SUFFIXES.items():
        if wanted.endswith(suffix):
            found = _plain(wanted[: -len(suffix)])
            if found is not None and BY_NAME[found].uses_sigmas:
                return found, schedule
    return None


def _plain(wanted: str) -> str | None:
    """Our name for a lower-cased sampler name without a schedule suffix, or None."""
    for row in TABLE:
        if wanted in (row.name, row.a1111.lower(), row.comfy):
            return row.name
    return None
