"""Tiny random-weight models with the real SD 1.x topology, built in code for the tests.

Same block types, attention layout, tokenizer and schedule as SD 1.5; only the widths are small
(models-offline.md), so a whole img2img runs in well under a second on one CPU thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TOKENIZER_DIR = Path(__file__).resolve().parents[1] / "src" / "dreamline" / "data" / "tokenizer"

# SD 1.x's noise schedule, read from the config dreamline ships for single-file checkpoints.
SD15_SCHEDULER = TOKENIZER_DIR.parent / "sd15" / "scheduler" / "scheduler_config.json"
SCHEDULER_CONFIG: dict[str, Any] = {
    key: value for key, value in json.loads(SD15_SCHEDULER.read_text()).items()
    if not key.startswith("_")
}


def tiny_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 64, 64),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=32,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
        act_fn="silu",
    )


def tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        norm_num_groups=32,
        sample_size=64,
        scaling_factor=0.18215,
    )


def tiny_text_encoder() -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        eos_token_id=2,
    )
    return CLIPTextModel(config)


def tiny_components(seed: int = 0) -> dict[str, Any]:
    """All parts of a tiny SD 1.x model, weights drawn from ``seed``, in eval mode."""
    torch.manual_seed(seed)  # test-only: model weight init uses the global RNG
    parts = {
        "unet": tiny_unet().eval(),
        "vae": tiny_vae().eval(),
        "text_encoder": tiny_text_encoder().eval(),
        "tokenizer": CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR)),
        "scheduler": PNDMScheduler.from_config(SCHEDULER_CONFIG),
    }
    return parts
