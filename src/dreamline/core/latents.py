"""Between pixels and latents: VAE encode/decode, the cheap per-model preview, seamless tiling.

Pixel conversion follows diffusers' image processor exactly (``/255``, ``2x - 1``; decode
``clamp(x/2 + 0.5)``, ``(x * 255).round()``) so our images equal its pipelines' byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from dreamline.core.memory import execution_device
from dreamline.core.noise import draw_noise

# Said once per VAE: after it, that VAE's decoder stays float32, so it cannot happen again.
UPCAST_NOTE = ("the {dtype} VAE decode gave NaN/inf pixels; decoded again in float32 "
               "(the VAE decoder stays float32 for this model)")


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
    param = next(vae.encoder.parameters()) if hasattr(vae, "encoder") else next(vae.parameters())
    pixels = pil_to_tensor(image, execution_device(vae), param.dtype)
    dist = vae.encode(pixels).latent_dist
    return LatentDistribution(mean=dist.mean, std=dist.std)


def decoder_dtype(vae: Any) -> torch.dtype:
    """The dtype the VAE decodes in (its decoder's; the encoder may differ after an upcast)."""
    decoder = getattr(vae, "decoder", None)
    return next((decoder if decoder is not None else vae).parameters()).dtype


def upcast_decoder(vae: Any) -> None:
    """Run the VAE's decoder (and post-quant conv) in float32 from now on; the encoder keeps
    its dtype.  The weights are the same numbers, widened."""
    for name in ("post_quant_conv", "decoder"):
        part = getattr(vae, name, None)
        if part is not None:
            part.to(dtype=torch.float32)


def config_wants_upcast(vae: Any) -> bool:
    """True when a float16 VAE's config sets ``force_upcast`` (as diffusers' own pipelines
    read it: only float16 is upcast; bfloat16 has float32's range)."""
    return decoder_dtype(vae) == torch.float16 and bool(getattr(vae.config, "force_upcast",
                                                                False))


def _decode_pixels(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    scaling = float(vae.config.scaling_factor)
    return vae.decode(latents.to(dtype=decoder_dtype(vae)) / scaling, return_dict=False)[0]


def decode(vae: Any, latents: torch.Tensor, *,
           report: Callable[[str], None] | None = None) -> Image.Image:
    """Full VAE decode of loop latents (1, 4, h, w) to an RGB image (w x h times the VAE
    factor).

    A float16 VAE whose config sets ``force_upcast`` decodes in float32.  A half-precision
    decode that gives NaN or inf is done again with the decoder in float32 (A1111's fallback);
    ``report`` hears that once, and the decoder stays float32 for this VAE.
    """
    if config_wants_upcast(vae):
        upcast_decoder(vae)
    pixels = _decode_pixels(vae, latents)
    if decoder_dtype(vae) != torch.float32 and not bool(torch.isfinite(pixels).all()):
        dtype = str(decoder_dtype(vae)).removeprefix("torch.")
        del pixels
        upcast_decoder(vae)
        if report is not None:
            report(UPCAST_NOTE.format(dtype=dtype))
        pixels = _decode_pixels(vae, latents)
    return tensor_to_pil(pixels)


PREVIEW_FIT_LATENT_SIDE = 8  # latent pixels per side of each synthetic fitting image
PREVIEW_FIT_IMAGES = 24  # solid colours, then horizontal and vertical two-colour gradients
PREVIEW_FIT_SEED = 0


@dataclass(frozen=True)
class PreviewMap:
    """A model's own cheap latent -> RGB estimate: ``rgb = latents @ weight + bias``.

    ``weight`` (4 x 3) applies to loop latents (already times the VAE's scaling factor) and
    gives colours in [0, 1]; ``factor`` is the VAE's pixels per latent pixel, so a preview can
    be blown up to the size of the image it stands for.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    factor: int

    def rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """(3, h, w) colours in [0, 1] at latent size for (1, 4, h, w) loop latents."""
        weight = self.weight.to(device=latents.device, dtype=torch.float32)
        bias = self.bias.to(device=latents.device, dtype=torch.float32)
        pixels = latents[0].detach().float()
        rgb = torch.einsum("chw,cr->rhw", pixels, weight) + bias[:, None, None]
        return rgb.clamp(0, 1)


def _fit_images(count: int, side: int, seed: int) -> torch.Tensor:
    """(count, 3, side, side) pictures in [0, 1]: solid colours and two-colour gradients, so
    every channel and mix of channels is seen flat and changing across the picture."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.0, 1.0, side)
    across, down = ramp[None, :].expand(side, side), ramp[:, None].expand(side, side)
    images = []
    for index in range(count):
        first = torch.rand(3, 1, 1, generator=generator)
        second = torch.rand(3, 1, 1, generator=generator)
        kind = index % 3
        if kind == 0:
            images.append(first.expand(3, side, side))
        else:
            position = across if kind == 1 else down
            images.append(first + (second - first) * position)
    return torch.stack(images)


def fit_preview_map(vae: Any, factor: int, *, images: int = PREVIEW_FIT_IMAGES,
                    latent_side: int = PREVIEW_FIT_LATENT_SIDE,
                    seed: int = PREVIEW_FIT_SEED) -> PreviewMap:
    """Fit the model's linear preview by least squares from its own VAE.

    Synthetic pictures of ``latent_side * factor`` pixels are encoded (the encoder's mean, no
    sampling) and decoded again; the mean colour of each ``factor`` x ``factor`` patch of the
    *decoded* picture is regressed, with a bias, on the latent pixel that covers it.  Fitting to
    the decode rather than the input makes the preview estimate what a full decode would show:
    for a trained VAE the two agree, and for a random-weight test VAE only the decode means
    anything.  It costs one small encode and decode, once per Generator.
    The fit is done on unscaled latents and divided by the scaling factor afterwards, so loop
    latents of any model (SD 1.x's 0.18215, the demo model's own) go in as they are.
    """
    param = next(vae.encoder.parameters()) if hasattr(vae, "encoder") else next(vae.parameters())
    pixels = _fit_images(images, latent_side * factor, seed)
    # Plain zero padding even when asked for from inside a --seamless run.
    with torch.inference_mode(), padding(vae, mode="zeros"):
        latents = vae.encode((2.0 * pixels - 1.0).to(execution_device(vae), param.dtype)
                             ).latent_dist.mean
        decoded = vae.decode(latents.to(decoder_dtype(vae)), return_dict=False)[0]
    colours = torch.nn.functional.avg_pool2d((decoded.double() / 2 + 0.5).clamp(0, 1).cpu(),
                                             factor)
    inputs = latents.double().cpu().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    targets = colours.permute(0, 2, 3, 1).reshape(-1, 3)
    design = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, targets).solution
    scaling = float(vae.config.scaling_factor)
    return PreviewMap(weight=(solution[:-1] / scaling).float(), bias=solution[-1].float(),
                      factor=factor)


def latents_to_preview_rgb(latents: torch.Tensor, preview: PreviewMap, *,
                           full_size: bool = True) -> Image.Image:
    """A cheap linear RGB estimate of loop latents; blown up (nearest) to the image's size
    unless ``full_size`` is False, so a preview lines up with the decoded image."""
    rgb = preview.rgb(latents)
    array = (rgb.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array, mode="RGB")
    if full_size and preview.factor != 1:
        image = image.resize((image.width * preview.factor, image.height * preview.factor),
                             Image.Resampling.NEAREST)
    return image


@contextmanager
def padding(*modules: Any, mode: str) -> Iterator[None]:
    """Every Conv2d of ``modules`` pads with ``mode`` while active; restored afterwards."""
    saved: list[tuple[torch.nn.Conv2d, str]] = []
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d):
                saved.append((layer, layer.padding_mode))
                setattr(layer, "padding_mode", mode)  # noqa: B010 (a str, not the Literal)
    try:
        yield
    finally:
        for layer, previous in saved:
            setattr(layer, "padding_mode", previous)  # noqa: B010


@contextmanager
def seamless(*modules: Any, enabled: bool = True) -> Iterator[None]:
    """Circular padding in every Conv2d while active, so the image tiles; restored afterwards."""
    if not enabled:
        yield
        return
    with padding(*modules, mode="circular"):
        yield
