"""The generator core: conditioning, noise and variations, samplers, the loop, img2img."""

from dreamline.core.generator import Generator
from dreamline.core.latents import decode, latents_to_preview_rgb
from dreamline.core.noise import derive_seed, draw_noise, slerp
from dreamline.core.samplers import SCHEDULERS, make_scheduler, sample, steps_to_run
from dreamline.core.types import GeneratedImage, RunInfo, StepInfo

__all__ = [
    "Generator", "GeneratedImage", "RunInfo", "StepInfo", "SCHEDULERS", "decode", "derive_seed",
    "draw_noise", "latents_to_preview_rgb", "make_scheduler", "sample", "slerp", "steps_to_run",
]
