"""SD 1.x inpainting checkpoints: a UNet with 9 input channels (4 latent, 1 mask, 4 latents of
the masked image), conditioned as they were trained and as diffusers'
StableDiffusionInpaintPipeline does.

The mask is binarised (repaint where the pixel mask is at least half "repaint") and shrunk to
latent size by nearest-neighbour sampling; the masked image is the init image with the repainted
pixels set to 0 (mid grey in [-1, 1]), encoded once per command and sampled per image from that
image's generator, after its noise (diffusers' draw order).  Without a mask (plain img2img) and
for txt2img the whole image is repainted: a full mask and an all-grey masked image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dreamline.core import latents as latent_ops
from dreamline.core.guidance import UNetNoise
from dreamline.core.memory import execution_device

INPAINT_CHANNELS = 9


def is_inpainting(unet: Any) -> bool:
    """Whether the UNet takes the mask and masked-image latents as extra input channels."""
    return int(unet.config.in_channels) == INPAINT_CHANNELS


@dataclass
class InpaintCondition:
    """One command's extra UNet inputs: the latent-size mask and the masked image's encoding."""

    mask: torch.Tensor  # (1, 1, h, w), 1 = repaint
    masked: latent_ops.LatentDistribution  # of the masked image, sampled per image

    @classmethod
    def build(cls, vae: Any, image: Image.Image | None, keep: np.ndarray | None,
              size: tuple[int, int], factor: int) -> InpaintCondition:
        """``image``: the init image (None: txt2img); ``keep``: its pixel mask (H x W float,
        1 = keep; None: repaint everything); ``size``: (width, height) in pixels."""
        width, height = size
        device, dtype = execution_device(vae), next(vae.parameters()).dtype  # offload: its GPU
        if keep is None:
            repaint = torch.ones(1, 1, height, width)
        else:
            repaint = torch.from_numpy((1.0 - keep >= 0.5).astype(np.float32))[None, None]
        # txt2img: a black picture, all masked.  Built like an init image (the same memory
        # layout as diffusers' image processor): a constant image is numerically delicate in
        # the VAE's group norms, so even the layout shows in the latents.
        pixels = latent_ops.pil_to_tensor(image if image is not None
                                          else Image.new("RGB", (width, height)),
                                          device, dtype)
        masked = pixels * (repaint < 0.5).to(device, dtype)
        dist = vae.encode(masked).latent_dist
        small = F.interpolate(repaint, size=(height // factor, width // factor))
        return cls(mask=small.to(device, dtype),
                   masked=latent_ops.LatentDistribution(mean=dist.mean, std=dist.std))

    def channels(self, generator: torch.Generator, scaling_factor: float,
                 dtype: torch.dtype) -> torch.Tensor:
        """(1, 5, h, w): the mask, then a masked-image latent sample drawn from ``generator``."""
        sample = self.masked.sample(generator, scaling_factor).to(dtype)
        return torch.cat([self.mask.to(dtype), sample], dim=1)


@dataclass
class InpaintUNetNoise(UNetNoise):
    """The 9-channel UNet as UNetNoise's call shape: (x (n, 4, h, w), t, context) -> (n, 4, h,
    w), with the extra channels (1, 5, h, w) repeated for the batch (CFG runs two)."""

    unet: Any
    extra: torch.Tensor

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        extra = self.extra.expand(x.shape[0], -1, -1, -1).to(x.dtype)
        return self.unet(torch.cat([x, extra], dim=1), t, encoder_hidden_states=context,
                         return_dict=False)[0]
