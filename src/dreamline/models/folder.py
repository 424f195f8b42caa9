"""Loading the networks of a diffusers folder, and the tokenizer and schedule of any model."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors import SafetensorError
from transformers import CLIPTextModel, CLIPTokenizer

from dreamline.errors import ModelError
from dreamline.models.checkpoint import first_line
from dreamline.models.single_file import check_sd1_networks, read_json
from dreamline.models.sources import SD15_CONFIG_DIR, TOKENIZER_DIR

FOLDER_PARTS = ("unet", "vae", "text_encoder")
# Failures third-party loaders raise for bad or mismatched files (never programming errors
# such as TypeError, which should surface as bugs).
LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, EOFError, SafetensorError,
               pickle.UnpicklingError)


def load_tokenizer(folder: Path, where: str) -> Any:
    """The folder's own CLIP tokenizer, else the one dreamline ships."""
    own = folder / "tokenizer"
    directory = own if (own / "vocab.json").is_file() else TOKENIZER_DIR
    try:
        return CLIPTokenizer.from_pretrained(str(directory), local_files_only=True)
    except LOAD_ERRORS as error:
        raise ModelError(f"{where}: cannot load the tokenizer from {directory}: "
                         f"{first_line(error)}") from None


def scheduler_config(folder: Path) -> dict[str, Any]:
    """The folder's own scheduler config, else the shipped SD 1.5 one."""
    own = folder / "scheduler" / "scheduler_config.json"
    chosen = own if own.is_file() else SD15_CONFIG_DIR / "scheduler" / "scheduler_config.json"
    return read_json(chosen, "scheduler config")


def _variant(folder: Path, part: str, stem: str) -> str | None:
    """'fp16' when a folder part has only fp16-variant weights (a common download form)."""
    directory = folder / part
    plain = [directory / f"{stem}.safetensors", directory / f"{stem}.bin",
             directory / f"{stem}.safetensors.index.json"]
    if any(path.is_file() for path in plain):
        return None
    if any(directory.glob(f"{stem}.fp16.*")):
        return "fp16"
    return None


def load_folder_networks(folder: Path, dtype: torch.dtype) -> tuple[Any, Any, Any]:
    """(unet, vae, text_encoder) of a diffusers SD 1.x folder; one-line ModelErrors."""
    where = str(folder)
    index = read_json(folder / "model_index.json", "diffusers model index")
    class_name = str(index.get("_class_name", ""))
    if any(marker in class_name for marker in ("XL", "Flux", "StableDiffusion3", "Kandinsky")):
        raise ModelError(f"{where} is a {class_name} model; expected an SD 1.x model")
    for part in FOLDER_PARTS:
        if not (folder / part).is_dir():
            raise ModelError(f"{where} has no {part}/ folder; expected a diffusers SD 1.x folder "
                             f"with unet/, vae/, text_encoder/")
    unet_config = read_json(folder / "unet" / "config.json", "UNet config")
    text_config = read_json(folder / "text_encoder" / "config.json", "text encoder config")
    check_sd1_networks(unet_config, int(text_config.get("hidden_size", -1)), where)

    loaded: dict[str, Any] = {}
    for part, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        try:
            loaded[part] = cls.from_pretrained(
                str(folder), subfolder=part, torch_dtype=dtype, local_files_only=True,
                variant=_variant(folder, part, "diffusion_pytorch_model"))
        except LOAD_ERRORS as error:
            raise ModelError(f"{where}: cannot load {part}/: {first_line(error)}") from None
    try:
        text_encoder = CLIPTextModel.from_pretrained(
            str(folder / "text_encoder"), local_files_only=True,
            variant=_variant(folder, "text_encoder", "model"))
    except LOAD_ERRORS as error:
        raise ModelError(f"{where}: cannot load text_encoder/: {first_line(error)}") from None
    return loaded["unet"], loaded["vae"], text_encoder
