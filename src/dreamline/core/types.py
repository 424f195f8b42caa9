"""What the generator hands back: finished images, what ran, and per-step progress.

These are plain records so the REPL, the output writer and the tests can read them without
knowing anything about the denoising loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamline.request import Request


@dataclass(frozen=True)
class StepInfo:
    """One finished sampling step, given to ``on_step`` for progress and intermediates.

    ``index`` counts the sampling steps of this run from 0 to ``total - 1``; ``total`` is
    ``RunInfo.steps_run`` for every sampler (Heun and DPM2 make two model calls per step, PLMS
    one extra at its start; they are reported once).  ``sigma`` and ``timestep`` are where the
    step started; ``sigma`` is None for DDIM/PLMS, which have none.  ``latents`` is the sample
    after the step, still scaled by the VAE's scaling factor; treat it as read-only.
    """

    index: int
    total: int
    sigma: float | None
    timestep: float
    latents: Any  # torch.Tensor (1, 4, h, w)


@dataclass(frozen=True)
class StartInfo:
    """The latents the sampler starts from, given to ``on_start`` once per image before the
    first step: img2img's init latents noised to the first level run ("the initial image that
    SD sees"), or txt2img's pure noise.  A separate callback, so ``on_step`` stays once per real
    step and progress bars need not skip anything.

    ``start_step`` is the number of schedule steps skipped (0 for txt2img), ``steps`` the full
    schedule (-s), ``steps_run`` the steps that follow; ``sigma`` is the start's noise level
    (None for DDIM/PLMS).  ``latents`` are scaled like StepInfo's; treat them as read-only.
    """

    start_step: int
    steps: int
    steps_run: int
    sigma: float | None
    latents: Any  # torch.Tensor (1, 4, h, w)


@dataclass(frozen=True)
class RunInfo:
    """What actually ran for one image, so the metadata records facts, not wishes."""

    sampler: str
    schedule: str  # "model" (the model's own sigmas, A1111's "Uniform"), "karras" or "exponential"
    width: int
    height: int
    steps: int  # steps of the full schedule (-s)
    steps_run: int  # new sampling steps taken (t_enc for img2img)
    start_step: int  # 0-based index of the first schedule step run (steps - steps_run)
    strength: float | None  # None for txt2img
    init_img: str | None
    init_hash: str | None  # first 10 hex digits of the init file's sha256
    model_name: str
    model_hash: str
    seconds: float
    variation_seed: int | None = None  # the -v target seed of this image, if it is a variation
    prediction_type: str = "epsilon"  # what the UNet predicted: "epsilon" or "v_prediction"
    # textual-inversion embeddings the prompt used: (name, 12-hex-digit short hash), A1111's
    # "TI hashes"
    embeddings: tuple[tuple[str, str], ...] = ()
    loras: tuple[tuple[str, float, str], ...] = ()  # (name as written, weight, A1111's hash)
    vae_name: str | None = None  # a VAE given apart from the checkpoint (file name), else None
    vae_hash: str | None = None  # its first 10 hex digits of sha256


@dataclass(frozen=True)
class GeneratedImage:
    """One image and the request that reproduces exactly it (iterations=1, no -v)."""

    image: Any  # PIL.Image.Image, RGB
    seed: int  # the file's seed: its own, or its variation seed
    request: Request
    info: RunInfo
