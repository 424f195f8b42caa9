"""Tests only: write diffusers weights in the original CompVis (LDM) single-file layout.

Most SD 1.x weights people download are single files in the CompVis layout: one state dict
whose keys start with ``model.diffusion_model.`` (UNet), ``first_stage_model.`` (VAE) and
``cond_stage_model.transformer.`` (CLIP text encoder).  dreamline reads them with diffusers' own
conversion; the tests need the other direction (diffusers -> CompVis) to write single-file test
models, which diffusers does not ship.  It is derived from one table of corresponding modules,
built from the diffusers configs, and checked independently by diffusers' own single-file loader
(test_models_convert.py).

The only tensors whose shape changes are the VAE mid-block attention projections: 1x1 convs
``[C, C, 1, 1]`` in CompVis, linear ``[C, C]`` in diffusers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer.text_model."
# Checkpoints saved with older transformers lack the "text_model." level.
TEXT_PREFIX_OLD = "cond_stage_model.transformer."
# Present in real SD 1.x files but not part of the three networks we load.
_IGNORED_SUFFIXES = ("position_ids",)

# Module-internal renames, diffusers name -> CompVis name (first path component(s) only).
_UNET_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"),
                ("time_emb_proj", "emb_layers.1"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_VAE_RESNET = (("conv_shortcut", "nin_shortcut"),)
_VAE_ATTENTION = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                  ("to_out.0", "proj_out"))
_RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "plain": (), "unet_resnet": _UNET_RESNET, "vae_resnet": _VAE_RESNET,
    "vae_attention": _VAE_ATTENTION,
}


class ConversionError(ValueError):
    """The checkpoint does not fit the configured architecture (the loader adds the path)."""


@dataclass(frozen=True)
class ModulePair:
    """One module under its diffusers name and its CompVis name, and how its insides differ."""

    diffusers: str
    compvis: str
    kind: str = "plain"  # a key of _RENAMES


def _config_value(config: Mapping[str, Any], name: str, default: Any = None) -> Any:
    return config.get(name, default)


def unet_pairs(config: Mapping[str, Any]) -> list[ModulePair]:
    """The UNet's module correspondence for an SD 1.x-style config (any widths)."""
    for name in ("class_embed_type", "addition_embed_type", "encoder_hid_dim"):
        if _config_value(config, name) is not None:
            raise ConversionError(f"UNet config sets {name}={config[name]!r}; only SD 1.x-style "
                                  f"UNets can be converted")
    layers = _config_value(config, "layers_per_block", 2)
    if not isinstance(layers, int):
        raise ConversionError(f"UNet config has layers_per_block={layers!r}; expected one whole "
                              f"number (SD 1.x style)")
    down_types = list(config["down_block_types"])
    up_types = list(config["up_block_types"])
    levels = len(config["block_out_channels"])
    if len(down_types) != levels or len(up_types) != levels:
        raise ConversionError("UNet config: block types and block_out_channels differ in length")

    pairs = [ModulePair("time_embedding.linear_1", "time_embed.0"),
             ModulePair("time_embedding.linear_2", "time_embed.2"),
             ModulePair("conv_in", "input_blocks.0.0"),
             ModulePair("conv_norm_out", "out.0"),
             ModulePair("conv_out", "out.2")]
    index = 1
    for level, block_type in enumerate(down_types):
        has_attention = "CrossAttn" in block_type
        for layer in range(layers):
            pairs.append(ModulePair(f"down_blocks.{level}.resnets.{layer}",
                                    f"input_blocks.{index}.0", "unet_resnet"))
            if has_attention:
                pairs.append(ModulePair(f"down_blocks.{level}.attentions.{layer}",
                                        f"input_blocks.{index}.1"))
            index += 1
        if level < levels - 1:
            pairs.append(ModulePair(f"down_blocks.{level}.downsamplers.0.conv",
                                    f"input_blocks.{index}.0.op"))
            index += 1

    pairs += [ModulePair("mid_block.resnets.0", "middle_block.0", "unet_resnet"),
              ModulePair("mid_block.attentions.0", "middle_block.1"),
              ModulePair("mid_block.resnets.1", "middle_block.2", "unet_resnet")]

    index = 0
    for level, block_type in enumerate(up_types):
        has_attention = "CrossAttn" in block_type
        for layer in range(layers + 1):
            pairs.append(ModulePair(f"up_blocks.{level}.resnets.{layer}",
                                    f"output_blocks.{index}.0", "unet_resnet"))
            if has_attention:
                pairs.append(ModulePair(f"up_blocks.{level}.attentions.{layer}",
                                        f"output_blocks.{index}.1"))
            if layer == layers and level < levels - 1:
                slot = 2 if has_attention else 1
                pairs.append(ModulePair(f"up_blocks.{level}.upsamplers.0.conv",
                                        f"output_blocks.{index}.{slot}.conv"))
            index += 1
    return pairs


def vae_pairs(config: Mapping[str, Any]) -> list[ModulePair]:
    """The VAE's module correspondence (AutoencoderKL, any widths)."""
    layers = _config_value(config, "layers_per_block", 2)
    levels = len(config["block_out_channels"])
    pairs = [ModulePair("quant_conv", "quant_conv"),
             ModulePair("post_quant_conv", "post_quant_conv")]
    for part in ("encoder", "decoder"):
        pairs += [ModulePair(f"{part}.conv_in", f"{part}.conv_in"),
                  ModulePair(f"{part}.conv_norm_out", f"{part}.norm_out"),
                  ModulePair(f"{part}.conv_out", f"{part}.conv_out"),
                  ModulePair(f"{part}.mid_block.resnets.0", f"{part}.mid.block_1", "vae_resnet"),
                  ModulePair(f"{part}.mid_block.attentions.0", f"{part}.mid.attn_1",
                             "vae_attention"),
                  ModulePair(f"{part}.mid_block.resnets.1", f"{part}.mid.block_2", "vae_resnet")]
    for level in range(levels):
        for layer in range(layers):
            pairs.append(ModulePair(f"encoder.down_blocks.{level}.resnets.{layer}",
                                    f"encoder.down.{level}.block.{layer}", "vae_resnet"))
        if level < levels - 1:
            pairs.append(ModulePair(f"encoder.down_blocks.{level}.downsamplers.0.conv",
                                    f"encoder.down.{level}.downsample.conv"))
    for level in range(levels):
        original = levels - 1 - level  # CompVis numbers the decoder's levels from the bottom
        for layer in range(layers + 1):
            pairs.append(ModulePair(f"decoder.up_blocks.{level}.resnets.{layer}",
                                    f"decoder.up.{original}.block.{layer}", "vae_resnet"))
        if level < levels - 1:
            pairs.append(ModulePair(f"decoder.up_blocks.{level}.upsamplers.0.conv",
                                    f"decoder.up.{original}.upsample.conv"))
    return pairs


@dataclass
class _KeyMapper:
    """Renames keys through a list of ModulePairs, in either direction."""

    pairs: list[ModulePair]
    to_compvis: bool
    _index: dict[str, ModulePair] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pair in self.pairs:
            self._index[pair.diffusers if self.to_compvis else pair.compvis] = pair

    def rename(self, key: str) -> tuple[str, ModulePair] | None:
        """The key's name on the other side and its module pair, or None if no module fits."""
        dot = len(key)
        while (dot := key.rfind(".", 0, dot)) > 0:
            pair = self._index.get(key[:dot])
            if pair is not None:
                rest = key[dot + 1:]
                renames = _RENAMES[pair.kind]
                for diffusers_name, compvis_name in renames:
                    old, new = ((diffusers_name, compvis_name) if self.to_compvis
                                else (compvis_name, diffusers_name))
                    if rest == old or rest.startswith(old + "."):
                        rest = new + rest[len(old):]
                        break
                target = pair.compvis if self.to_compvis else pair.diffusers
                return f"{target}.{rest}", pair
        return None


def _vae_attention_weight(tensor: torch.Tensor, to_compvis: bool, key: str) -> torch.Tensor:
    """1x1 conv weight [C, C, 1, 1] (CompVis) <-> linear weight [C, C] (diffusers)."""
    if not key.endswith(".weight") or ".norm." in key:
        return tensor
    if to_compvis:
        return tensor[:, :, None, None] if tensor.ndim == 2 else tensor
    if tensor.ndim == 4 and tuple(tensor.shape[2:]) == (1, 1):
        return tensor[:, :, 0, 0]
    return tensor


def _convert(state_dict: Mapping[str, torch.Tensor], pairs: list[ModulePair],
             to_compvis: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    mapper = _KeyMapper(pairs, to_compvis)
    converted: dict[str, torch.Tensor] = {}
    unmatched: list[str] = []
    for key, tensor in state_dict.items():
        renamed = mapper.rename(key)
        if renamed is None:
            unmatched.append(key)
            continue
        new_key, pair = renamed
        if pair.kind == "vae_attention":
            tensor = _vae_attention_weight(tensor, to_compvis, new_key if to_compvis else key)
        converted[new_key] = tensor
    return converted, unmatched


def _strip_text_model(key: str) -> str:
    return key.removeprefix("text_model.")


def diffusers_to_compvis(unet: Mapping[str, torch.Tensor], vae: Mapping[str, torch.Tensor],
                         text_encoder: Mapping[str, torch.Tensor], unet_config: Mapping[str, Any],
                         vae_config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """One CompVis-layout state dict from the three diffusers/transformers state dicts.

    The text encoder's keys may carry transformers 4's ``text_model.`` level or not (5.x).
    """
    result: dict[str, torch.Tensor] = {}
    for part, state, pairs, prefix in (("UNet", unet, unet_pairs(unet_config), UNET_PREFIX),
                                       ("VAE", vae, vae_pairs(vae_config), VAE_PREFIX)):
        converted, unmatched = _convert(state, pairs, True)
        if unmatched:
            raise ConversionError(f"{part}: {len(unmatched)} keys have no CompVis name, "
                                  f"e.g. {unmatched[0]!r}")
        result.update({prefix + key: value for key, value in converted.items()})
    for key, value in text_encoder.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        result[TEXT_PREFIX + _strip_text_model(key)] = value
    return result
