"""Tiny random-weight parts written to disk in the formats users download: LoRAs (kohya/A1111
and diffusers/peft), for the tests of models/lora.py (and VAEs, models/vae.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from core_fixtures import SIZE
from safetensors.torch import save_file
from tiny_models import SCHEDULER_CONFIG, tiny_components

from dreamline.models.types import LoadedModel

_UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
_TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def fresh_model(seed: int = 0) -> LoadedModel:
    """A tiny model of its own (LoRAs change networks in place: never the shared one)."""
    parts = tiny_components(seed=seed)
    return LoadedModel(
        name="tiny", path=Path("tiny"), short_hash="0123456789",
        unet=parts["unet"], vae=parts["vae"], text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"], scheduler_config=dict(SCHEDULER_CONFIG),
        device=torch.device("cpu"), dtype=torch.float32, default_width=SIZE,
        default_height=SIZE)


def _linears(module: torch.nn.Module, targets: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(name, layer) for name, layer in module.named_modules()
            if isinstance(layer, torch.nn.Linear) and name.endswith(targets)]


def lora_tensors(kind: str, seed: int = 1, rank: int = 4, *, text: bool = True,
                 context: int | None = None) -> dict[str, torch.Tensor]:
    """Random LoRA weights for the tiny model: ``kind`` "kohya" (lora_unet_*/lora_te_*,
    lora_down/lora_up, alpha) or "peft" (unet.*/text_encoder.*, lora_A/lora_B).
    ``context`` fakes another architecture's cross-attention width."""
    parts = tiny_components(seed=0)
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    groups = [("unet", parts["unet"], _UNET_TARGETS)]
    if text:
        groups.append(("text_encoder", parts["text_encoder"], _TEXT_TARGETS))
    for prefix, network, targets in groups:
        for name, layer in _linears(network, targets):
            inputs = layer.in_features
            if context is not None and ("attn2.to_k" in name or "attn2.to_v" in name):
                inputs = context
            down = torch.randn(rank, inputs, generator=generator) * 0.3
            up = torch.randn(layer.out_features, rank, generator=generator) * 0.3
            if kind == "kohya":
                short = "unet" if prefix == "unet" else "te"
                key = f"lora_{short}_{name.replace('.', '_')}"
                tensors[f"{key}.lora_down.weight"] = down
                tensors[f"{key}.lora_up.weight"] = up
                tensors[f"{key}.alpha"] = torch.tensor(float(rank) / 2)
            else:
                tensors[f"{prefix}.{name}.lora_A.weight"] = down
                tensors[f"{prefix}.{name}.lora_B.weight"] = up
    return tensors


def save_lora(path: Path, kind: str, seed: int = 1, **options: Any) -> Path:
    """Write a LoRA file: ``.safetensors``, or ``.pt`` (torch.save of the plain dict)."""
    tensors = lora_tensors(kind, seed, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(tensors, str(path))
    else:
        torch.save(tensors, path)
    return path
