"""The noise-prediction callables the loop uses: the UNet adapter and classifier-free guidance.

Each returns the model's noise prediction (for a v-prediction model, its v) and has the same
call shape ``(x_scaled, timestep) -> prediction``, so guidance (or anything else later) composes
around the model without the loop knowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class UNetNoise:
    """The UNet as a function of (latents (n, 4, h, w), timestep, text context (n, 77, dim))
    -> its noise prediction (n, 4, h, w)."""

    unet: Any

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, encoder_hidden_states=context, return_dict=False)[0]


@dataclass
class GuidedNoise:
    """Classifier-free guided noise prediction: ``uncond + (cond - uncond) * scale``.

    Running [uncond, cond] as one batch of two is both faster and what diffusers does, which
    keeps our results equal to its pipelines.  Scale 1 is plain conditional sampling and needs
    no batch.
    """

    model: UNetNoise
    cond: torch.Tensor  # (1, 77, dim)
    uncond: torch.Tensor  # (1, 77, dim)
    scale: float

    def __post_init__(self) -> None:
        self._both = torch.cat([self.uncond, self.cond])

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return self.model(x, t, self.cond)
        out_uncond, out_cond = self.model(torch.cat([x, x]), t, self._both).chunk(2)
        return out_uncond + (out_cond - out_uncond) * self.scale
