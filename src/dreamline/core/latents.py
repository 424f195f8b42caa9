"""Between pixels and latents: VAE encode/decode, the cheap preview, seamless tiling.

Pixel conversion follows diffusers' image processor exactly (``/255``, ``2x - 1``; decode
``clamp(x/2 + 0.5)``, ``(x * 255).round()``) so our images equal its pipelines' byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from dreamline.core.noise import draw_noise

# Latent channel -> RGB weights for SD 1.x latents (as the UNet sees them, i.e. already times the
# 0.18215 scaling factor): a least-squares fit of decoded colours against latents published by
# Birchlabs and used for InvokeAI's previews.  Good enough to watch an image form; not a decode.
SD1_LATENT_RGB = torch.tensor([
    #    R       G       B
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
])


def pil_to_tensor(image: Image.Image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """An RGB PIL image as a (1, 3, H, W) tensor in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8).astype(np.float32) / 255.0
    # The memory layout picks the conv kernels and so the last bits of the latents: build the
    # same (1, H, W, 3) -> NCHW view diffusers' image processor makes, so we encode as it does.
    tensor = torch.from_numpy(array[None]).permute(0, 3, 1, 2)
    return (2.0 * tensor - 1.0).to(device=device, dtype=dtype)


def tensor_to_pil(pixels: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) tensor in [-1, 1] as an 8-bit RGB image."""
    unit = (pixels[0].float() / 2 + 0.5).clamp(0, 1)
    array = (unit.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


@dataclass(frozen=True)
class LatentDistribution:
    """The VAE encoder's Gaussian for one init image, kept so each seed can sample its own."""

    mean: torch.Tensor
    std: torch.Tensor

    def sample(self, generator: torch.Generator, scaling_factor: float) -> torch.Tensor:
        """A latent sample from ``generator`` (CPU float32 draw), times the scaling factor."""
        noise = draw_noise(generator, self.mean.shape, self.mean.device, self.mean.dtype)
        return (self.mean + self.std * noise) * scaling_factor


def encode(vae: Any, image: Image.Image) -> LatentDistribution:
    """Run the VAE encoder once; sampling happens per image from its seeded generator."""
    param = next(vae.parameters())
    pixels = pil_to_tensor(image, param.device, param.dtype)
    dist = vae.encode(pixels).latent_dist
    return LatentDistribution(mean=dist.mean, std=dist.std)


def decode(vae: Any, latents: torch.Tensor) -> Image.Image:
    """Full VAE decode of loop latents to an RGB image."""
    scaling = float(vae.config.scaling_factor)
    param = next(vae.parameters())
    pixels = vae.decode(latents.to(dtype=param.dtype) / scaling, return_dict=False)[0]
    return tensor_to_pil(pixels)


def latents_to_preview_rgb(latents: torch.Tensor) -> Image.Image:
    """A cheap linear RGB estimate of loop latents, at latent size (1/8 of the image)."""
    factors = SD1_LATENT_RGB.to(device=latents.device, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->rhw", latents[0].float(), factors)
    return tensor_to_pil(rgb.unsqueeze(0))


@contextmanager
def seamless(*modules: Any, enabled: bool = True) -> Iterator[None]:
    """Circular padding in every Conv2d while active, so the image tiles; restored afterwards."""
    if not enabled:
        yield
        return
    saved: list[tuple[torch.nn.Conv2d, str]] = []
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d):
                saved.append((layer, layer.padding_mode))
                layer.padding_mode = "circular"
    try:
        yield
    finally:
        for layer, mode in saved:
            layer.padding_mode = mode
