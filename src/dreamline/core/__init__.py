"""The generator core: conditioning, noise and variations, the schedule seam, the loop, img2img."""

from dreamline.core.generator import Generator
from dreamline.core.latents import PreviewMap, decode, fit_preview_map, latents_to_preview_rgb
from dreamline.core.loop import sample
from dreamline.core.noise import derive_seed, draw_noise, slerp
from dreamline.core.schedule import PREDICTION_TYPES, SCHEDULERS, Schedule, make_scheduler
from dreamline.core.types import GeneratedImage, RunInfo, StartInfo, StepInfo
from dreamline.request import steps_to_run

__all__ = [
    "Generator", "GeneratedImage", "PREDICTION_TYPES", "PreviewMap", "RunInfo", "Schedule",
    "StartInfo", "StepInfo", "SCHEDULERS", "decode", "derive_seed", "draw_noise",
    "fit_preview_map", "latents_to_preview_rgb", "make_scheduler", "sample", "slerp",
    "steps_to_run",
]
