"""VAEs given apart from the checkpoint: ``--vae PATH``, a ``vae:`` field in models.yaml, or an
A1111-style sidecar (``<checkpoint>.vae.pt``, ``.vae.safetensors``, ``.vae.ckpt`` beside it).

A VAE file is read by content (models.checkpoint.read_tensors): the CompVis layout with
``first_stage_model.*`` keys or bare ``encoder.*``/``decoder.*`` keys (``.pt``, ``.ckpt``,
``.safetensors``), converted with diffusers' own key mapping into the config of the model's
VAE; or a diffusers ``vae/`` folder (``config.json`` + weights, or a folder holding ``vae/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

from dreamline.errors import ModelError
from dreamline.models.checkpoint import first_line, read_tensors
from dreamline.models.kinds import VAE_PREFIX
from dreamline.models.single_file import fill, read_json

SIDECAR_SUFFIXES = (".vae.pt", ".vae.safetensors", ".vae.ckpt")
_BARE_STARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_SKIPPED = ("loss.", "model_ema.")  # a VAE's training loss and EMA bookkeeping


def sidecar(checkpoint: Path) -> Path | None:
    """The A1111 sidecar VAE beside a single file (``model.vae.pt`` for ``model.ckpt``)."""
    if checkpoint.is_dir():
        return None
    for suffix in SIDECAR_SUFFIXES:
        candidate = checkpoint.with_name(checkpoint.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def vae_weights_file(path: Path) -> Path:
    """The file whose hash names a VAE (a folder: its weights file)."""
    if path.is_file():
        return path
    folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ModelError(f"VAE {path}: a folder without diffusion_pytorch_model.safetensors (or "
                     f".bin); expected a diffusers vae/ folder or a VAE file")


def _vae_state(tensors: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The CompVis VAE keys of a VAE file, under ``first_stage_model.`` (as in a checkpoint)."""
    prefixed = {key: value for key, value in tensors.items() if key.startswith(VAE_PREFIX)}
    if prefixed:
        return prefixed
    bare = {VAE_PREFIX + key: value for key, value in tensors.items()
            if key.startswith(_BARE_STARTS)}
    if not bare:
        sample = next(iter(tensors), "nothing")
        raise ModelError(f"{where} is not a VAE: no first_stage_model.* or encoder./decoder. keys "
                         f"(first key {sample!r}); expected a VAE file in the CompVis layout or a "
                         f"diffusers vae/ folder")
    return bare


def _from_folder(path: Path, dtype: torch.dtype) -> Any:
    folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
    if not (folder / "config.json").is_file():
        raise ModelError(f"VAE {path}: a folder without config.json; expected a diffusers vae/ "
                         f"folder")
    try:
        return AutoencoderKL.from_pretrained(str(folder), local_files_only=True,
                                             torch_dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelError(f"VAE {folder}: not a diffusers VAE folder: "
                         f"{first_line(error)}") from None


def load_vae(path: Path, config_file: Path, dtype: torch.dtype) -> Any:
    """An AutoencoderKL from a VAE file or folder.  A file is built with the VAE config in
    ``config_file`` (the model's own vae/config.json), strictly; ModelError (one line) for a
    missing path, a file that is no VAE, or one of another architecture."""
    where = f"VAE {path}"
    if not path.exists():
        raise ModelError(f"{where} does not exist; expected a VAE file (.pt, .ckpt, "
                         f".safetensors) or a diffusers vae/ folder")
    if path.is_dir():
        return _from_folder(path, dtype)
    state = _vae_state(read_tensors(path, "VAE"), where)
    config = read_json(config_file, "VAE config")
    try:
        converted = convert_ldm_vae_checkpoint(state, config)
    except (KeyError, ValueError, IndexError, RuntimeError) as error:
        raise ModelError(f"{where} does not fit the VAE config {config_file} "
                         f"({first_line(error)})") from None
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(config)
    fill(vae, converted, "VAE", where, config_file.parent)
    return vae
