"""What a loaded model is, as the generator core sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class LoadedModel:
    """The networks of one SD 1.x-style model, on one device in one dtype, loaded once."""

    name: str
    path: Path
    short_hash: str  # first 10 hex digits of the weights file's sha256 (see models.hashing)
    unet: Any  # diffusers UNet2DConditionModel
    vae: Any  # diffusers AutoencoderKL
    text_encoder: Any  # transformers CLIPTextModel
    tokenizer: Any  # transformers CLIPTokenizer
    scheduler_config: dict[str, Any]  # the model's own noise-schedule config
    device: torch.device
    dtype: torch.dtype
    default_width: int
    default_height: int
    # What the UNet predicts: "epsilon" (the noise; most SD 1.x) or "v_prediction"; also set
    # as scheduler_config["prediction_type"].  Last, with a default, so older callers still work.
    prediction_type: str = "epsilon"
    # A VAE given apart from the checkpoint (--vae, models.yaml vae:, a sidecar file): its
    # file name and short hash, for the metadata; None when the checkpoint's own VAE is used.
    vae_name: str | None = None
    vae_hash: str | None = None

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel: 2 ** (VAE levels - 1); 8 for SD 1.x."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: VAE factor times the UNet's downsampling."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)
