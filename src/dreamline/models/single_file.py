"""A CompVis single file -> the three SD 1.x networks, with diffusers' own key conversion.

The key renaming is diffusers' (``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``,
``convert_ldm_clip_checkpoint``: the mapping functions ``from_single_file`` itself runs), with
the configs of a local folder (the shipped SD 1.5 configs, or a registry entry's ``config``).
What stays ours is the small shim around them, kept for reasons ``from_single_file`` cannot
serve: it reads files with ``torch.load(weights_only=True)`` only for ``.ckpt`` and would refuse
the original-release ones (models.safe_pickle); without ``accelerate`` it first random-initialises
the whole network (seconds for SD 1.5) and then loads with ``strict=False``, so a missing tensor
would silently stay random.  Here networks are built on the meta device and filled strictly,
every mismatch a one-line ModelError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from transformers import CLIPTextConfig, CLIPTextModel

from dreamline.errors import ModelError
from dreamline.models.checkpoint import first_line
from dreamline.models.kinds import UNET_PREFIX, VAE_PREFIX

_CONFIG_ERRORS = (OSError, ValueError, KeyError)
_TRAINING_ONLY = (VAE_PREFIX + "loss.",)  # the VAE's training loss: no part of the network


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist; expected the {what}") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{path} is not a readable {what}: {first_line(error)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a {what}: expected a JSON object")
    return data


def check_sd1_networks(unet_config: Mapping[str, Any], text_hidden: int, where: str) -> None:
    """Refuse networks the generator cannot drive like SD 1.x (SD 2, SDXL, other inputs)."""
    in_channels = unet_config.get("in_channels")
    if in_channels not in (4, 9):
        raise ModelError(f"{where}: the UNet takes {in_channels} input channels; expected 4 (an "
                         f"SD 1.x image model) or 9 (an SD 1.x inpainting model)")
    for name in ("class_embed_type", "addition_embed_type", "encoder_hid_dim"):
        if unet_config.get(name) is not None:
            raise ModelError(f"{where}: the UNet config sets {name}={unet_config[name]!r}; "
                             f"expected an SD 1.x-style UNet")
    cross = unet_config.get("cross_attention_dim")
    if cross != text_hidden:
        raise ModelError(f"{where}: the UNet's cross_attention_dim is {cross} but the text "
                         f"encoder's width is {text_hidden}; expected them to match (SD 1.x: 768)")


def fill(model: torch.nn.Module, state: dict[str, torch.Tensor], part: str, where: str,
         config_dir: Path) -> None:
    """Load ``state`` into a model built on the meta device; every mismatch is one line."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        detail = (f"{len(missing)} tensors missing, e.g. {missing[0]!r}" if missing
                  else f"{len(unexpected)} unexpected tensors, e.g. {unexpected[0]!r}")
        raise ModelError(f"{where}: the {part} does not match the config in {config_dir} "
                         f"({detail}); expected an SD 1.x model of that architecture (a "
                         f"models.yaml entry can name another config folder)")
    for key, tensor in state.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise ModelError(f"{where}: the {part} tensor {key} has shape {list(tensor.shape)} "
                             f"but the config in {config_dir} expects {list(want)}; the file's "
                             f"architecture differs from that config")
    model.load_state_dict(state, strict=True, assign=True)
    for name, buffer in list(model.named_buffers()):  # non-persistent: CLIP's position_ids
        if buffer.is_meta:
            owner_name, _, leaf = name.rpartition(".")
            if leaf != "position_ids":
                raise ModelError(f"{where}: cannot initialise the buffer {name}; this "
                                 f"transformers or diffusers version builds the model differently")
            owner = model.get_submodule(owner_name) if owner_name else model
            positions = torch.arange(buffer.shape[-1]).expand(tuple(buffer.shape)).clone()
            owner.register_buffer(leaf, positions, persistent=False)


def _left_out(checkpoint: Mapping[str, torch.Tensor], prefix: str,
              converted: Mapping[str, torch.Tensor]) -> list[str]:
    """The file's keys under ``prefix`` that the conversion found no place for."""
    used = {tensor.data_ptr() for tensor in converted.values() if tensor.numel()}
    return [key for key, tensor in checkpoint.items()
            if key.startswith(prefix) and not key.startswith(_TRAINING_ONLY) and tensor.numel()
            and tensor.data_ptr() not in used]


def _convert(convert: Any, checkpoint: Mapping[str, torch.Tensor], config: dict[str, Any],
             prefix: str, part: str, where: str, config_dir: Path) -> dict[str, torch.Tensor]:
    try:
        converted = convert(checkpoint, config)
    except (KeyError, ValueError, IndexError, RuntimeError) as error:
        raise ModelError(f"{where}: the {part} does not fit the config in {config_dir} "
                         f"({first_line(error)})") from None
    extra = _left_out(checkpoint, prefix, converted)
    if extra:
        raise ModelError(f"{where}: {len(extra)} {part} tensors do not fit the config in "
                         f"{config_dir}, e.g. {extra[0]!r}; expected an SD 1.x model of that "
                         f"architecture")
    return converted


def networks_from_checkpoint(checkpoint: dict[str, torch.Tensor], config_dir: Path,
                             where: str) -> tuple[Any, Any, Any]:
    """(unet, vae, text_encoder) holding the checkpoint's own tensors (dtype as stored); vae is
    None for a checkpoint without one (its VAE is given apart, models.vae)."""
    has_vae = any(key.startswith(VAE_PREFIX) for key in checkpoint)
    unet_config = read_json(config_dir / "unet" / "config.json", "UNet config")
    vae_config = read_json(config_dir / "vae" / "config.json", "VAE config")
    try:
        text_config = CLIPTextConfig.from_pretrained(str(config_dir / "text_encoder"),
                                                     local_files_only=True)
    except _CONFIG_ERRORS as error:
        raise ModelError(f"{config_dir / 'text_encoder'}: not a CLIP text encoder config: "
                         f"{first_line(error)}") from None
    check_sd1_networks(unet_config, text_config.hidden_size, str(config_dir))

    unet_state = _convert(convert_ldm_unet_checkpoint, checkpoint, unet_config, UNET_PREFIX,
                          "UNet", where, config_dir)
    vae_state = (_convert(convert_ldm_vae_checkpoint, checkpoint, vae_config, VAE_PREFIX,
                          "VAE", where, config_dir) if has_vae else None)
    text_state = {key: value for key, value in convert_ldm_clip_checkpoint(checkpoint).items()
                  if not key.endswith("position_ids")}
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(vae_config) if vae_state is not None else None
        text_encoder = CLIPTextModel(text_config)
    fill(unet, unet_state, "UNet", where, config_dir)
    if vae is not None and vae_state is not None:
        fill(vae, vae_state, "VAE", where, config_dir)
    nested = any(key.startswith("text_model.") for key in text_encoder.state_dict())
    text_state = {(f"text_model.{key}" if nested else key): value
                  for key, value in ((key.removeprefix("text_model."), value)
                                     for key, value in text_state.items())}
    fill(text_encoder, text_state, "text encoder", where, config_dir)
    return unet, vae, text_encoder
