"""Tiny SD 1.x model files on disk, in every layout the loader accepts, for tests.

    from model_files import build_model_files, model_files   # model_files is a fixture

``model_files`` (session-scoped pytest fixture) gives a ModelFiles with a diffusers folder, the
same weights as a CompVis single file in .safetensors and .ckpt form, the matching config
folder (for the single files, whose architecture is not SD 1.5), a models.yaml naming all
three, and the in-memory originals to compare against.  Building everything takes about a
second; do it once per session.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from compvis_layout import diffusers_to_compvis
from safetensors.torch import save_file
from tiny_models import SCHEDULER_CONFIG, TOKENIZER_DIR, tiny_components

MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": [None, None],
    "safety_checker": [None, None],
    "requires_safety_checker": False,
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
SIZE = 64  # the tiny models' native image size: UNet sample_size 8 x VAE factor 8


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_configs(directory: Path, parts: dict[str, Any]) -> None:
    """model_index.json, part configs, scheduler config and tokenizer; no weights."""
    _write_json(directory / "model_index.json", MODEL_INDEX)
    parts["unet"].save_config(str(directory / "unet"))
    parts["vae"].save_config(str(directory / "vae"))
    parts["text_encoder"].config.save_pretrained(str(directory / "text_encoder"))
    _write_json(directory / "scheduler" / "scheduler_config.json",
                {"_class_name": "PNDMScheduler", **SCHEDULER_CONFIG})
    shutil.copytree(TOKENIZER_DIR, directory / "tokenizer", dirs_exist_ok=True)


def tiny_config_dir(directory: Path, seed: int = 0) -> Path:
    """A diffusers-style config folder (no weights) describing the tiny architecture."""
    directory = Path(directory)
    _write_configs(directory, tiny_components(seed))
    return directory


def save_diffusers(directory: Path, seed: int = 0, parts: dict[str, Any] | None = None) -> Path:
    """The tiny model (weights from ``seed``) as a diffusers folder; returns the folder."""
    directory = Path(directory)
    parts = tiny_components(seed) if parts is None else parts
    _write_configs(directory, parts)
    parts["unet"].save_pretrained(str(directory / "unet"))
    parts["vae"].save_pretrained(str(directory / "vae"))
    parts["text_encoder"].save_pretrained(str(directory / "text_encoder"))
    return directory


def compvis_state_dict(parts: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The parts' weights under the original CompVis key names (contiguous, ready to save)."""
    state = diffusers_to_compvis(parts["unet"].state_dict(), parts["vae"].state_dict(),
                                 parts["text_encoder"].state_dict(), parts["unet"].config,
                                 parts["vae"].config)
    return {key: value.detach().contiguous().clone() for key, value in state.items()}


def save_compvis(path: Path, seed: int = 0, fmt: str = "safetensors",
                 parts: dict[str, Any] | None = None) -> Path:
    """The tiny model as one CompVis-layout file: .safetensors, or a .ckpt {"state_dict": ...}.

    Load it with the config folder from ``tiny_config_dir`` (its widths are not SD 1.5's).
    """
    path = Path(path)
    parts = tiny_components(seed) if parts is None else parts
    state = compvis_state_dict(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        save_file(state, str(path))
    elif fmt == "ckpt":
        torch.save({"state_dict": state, "global_step": 1}, str(path))
    else:
        raise ValueError(f"fmt must be 'safetensors' or 'ckpt', not {fmt!r}")
    return path


@dataclass
class ModelFiles:
    """One tiny model on disk in every layout, plus its in-memory original."""

    root: Path
    diffusers: Path  # folder with model_index.json
    safetensors: Path  # CompVis single file
    ckpt: Path  # CompVis single file, pickle with {"state_dict": ...}
    config_dir: Path  # tiny architecture configs for the single files
    registry_yaml: Path  # models.yaml with entries tiny-diffusers (default), tiny-st, tiny-ckpt
    parts: dict[str, Any]  # the original unet, vae, text_encoder, tokenizer, scheduler


def write_registry(path: Path, files: ModelFiles) -> Path:
    """A models.yaml naming the three layouts, with paths relative to the yaml's folder."""
    def rel(target: Path) -> str:
        return str(target.relative_to(path.parent))

    lines = [
        "tiny-diffusers:",
        f"  path: {rel(files.diffusers)}",
        "  description: tiny test model, diffusers folder",
        f"  width: {SIZE}",
        f"  height: {SIZE}",
        "  default: true",
    ]
    for name, target in (("tiny-st", files.safetensors), ("tiny-ckpt", files.ckpt)):
        lines += [f"{name}:", f"  path: {rel(target)}", f"  config: {rel(files.config_dir)}",
                  f"  description: tiny test model, {target.suffix} single file"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_model_files(root: Path, seed: int = 0) -> ModelFiles:
    """Write the tiny model (weights from ``seed``) in every layout under ``root``."""
    root = Path(root)
    parts = tiny_components(seed)
    files = ModelFiles(
        root=root,
        diffusers=save_diffusers(root / "tiny-diffusers", parts=parts),
        safetensors=save_compvis(root / "tiny.safetensors", parts=parts),
        ckpt=save_compvis(root / "tiny.ckpt", fmt="ckpt", parts=parts),
        config_dir=root / "tiny-config",
        registry_yaml=root / "models.yaml",
        parts=parts,
    )
    _write_configs(files.config_dir, parts)
    write_registry(files.registry_yaml, files)
    return files


@pytest.fixture(scope="session", autouse=True)
def user_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Per-user caches (model hashes) go to a temporary XDG_CACHE_HOME, never the user's own
    or the checkout; subprocesses the tests start inherit it."""
    cache_home = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache_home))
        yield cache_home


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """The tiny model in every layout, built once per test session (treat it as read-only)."""
    return build_model_files(tmp_path_factory.mktemp("tiny-model-files"))
