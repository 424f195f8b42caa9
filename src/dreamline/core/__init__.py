"""The generator core: conditioning, noise and variations, samplers, the loop, img2img."""

from dreamline.core.generator import Generator
from dreamline.core.latents import PreviewMap, decode, fit_preview_map, latents_to_preview_rgb
from dreamline.core.noise import derive_seed, draw_noise, slerp
from dreamline.core.samplers import SCHEDULERS, make_scheduler, sample, steps_to_run
from dreamline.core.types import GeneratedImage, RunInfo, StartInfo, StepInfo

__all__ = [
    "Generator", "GeneratedImage", "PreviewMap", "RunInfo", "StartInfo", "StepInfo", "SCHEDULERS",
    "decode", "derive_seed", "draw_noise", "fit_preview_map", "latents_to_preview_rgb",
    "make_scheduler", "sample", "slerp", "steps_to_run",
]
