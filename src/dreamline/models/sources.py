"""What to load: a registry name or a path resolved to a ModelSource, checked before loading.

Also where a source's prediction type comes from: a models.yaml ``prediction_type``, an
A1111-style sibling ``<name>.yaml`` with ``parameterization: "v"``, or (found while reading)
the file's ``v_pred`` key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dreamline.errors import ModelError
from dreamline.models.registry import DATA_DIR, ModelEntry, ModelRegistry

SD15_CONFIG_DIR = DATA_DIR / "sd15"
SD15_INPAINT_CONFIG_DIR = DATA_DIR / "sd15-inpainting"  # 9-channel UNet: inpainting checkpoints
TOKENIZER_DIR = DATA_DIR / "tokenizer"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
EXPECTED = ("expected a diffusers folder (with model_index.json) or an SD 1.x .safetensors/.ckpt "
            "file")
EPSILON, V_PREDICTION = "epsilon", "v_prediction"


@dataclass(frozen=True)
class ModelSource:
    """What to load: the resolved weights path, its display name, configs and settings."""

    name: str
    path: Path
    config_dir: Path | None = None  # for single files; None = the shipped SD 1.5 configs
    width: int | None = None
    height: int | None = None
    prediction_type: str | None = None  # from the registry entry; None: detect
    vae: Path | None = None  # the entry's vae: field

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


def _from_entry(entry: ModelEntry) -> ModelSource:
    return ModelSource(entry.name, entry.path, entry.config, entry.width, entry.height,
                       entry.prediction_type, entry.vae)


def resolve_source(name_or_path: str | Path | None, registry: ModelRegistry) -> ModelSource:
    """A registry name (None = the default), or a path to a folder or file, as a ModelSource."""
    if name_or_path is None:
        return _from_entry(registry.entry())
    text = str(name_or_path)
    if text in registry:
        return _from_entry(registry.entry(text))
    path = Path(text).expanduser()
    looks_like_path = (isinstance(name_or_path, Path) or "/" in text or os.sep in text
                       or path.suffix.lower() in SINGLE_FILE_SUFFIXES)
    if not path.exists():
        if looks_like_path:
            raise ModelError(f"model {text!r}: {path.resolve()} does not exist; {EXPECTED}")
        registry.entry(text)  # raises: unknown model, listing the known names
    resolved = path.resolve()
    for name in registry.names:  # a path that an entry names gets that entry's settings
        if registry.entry(name).path == resolved:
            return _from_entry(registry.entry(name))
    return ModelSource(resolved.stem if resolved.is_file() else resolved.name, resolved)


def check_path(source: ModelSource) -> None:
    """ModelError unless the source is an existing diffusers folder or single model file."""
    path = source.path
    label = f"model {source.name!r}: {path}"
    if not path.exists():
        raise ModelError(f"{label} does not exist; {EXPECTED}")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"{label} is a folder without model_index.json; {EXPECTED}")
        return
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise ModelError(f"{label} is not a model file; {EXPECTED}")


def config_dir_for(source: ModelSource) -> Path:
    """The config folder a single file is built from; ModelError if it lacks a part config."""
    config_dir = SD15_CONFIG_DIR if source.config_dir is None else source.config_dir
    for part in ("unet", "vae", "text_encoder"):
        if not (config_dir / part / "config.json").is_file():
            raise ModelError(f"model {source.name!r}: config folder {config_dir} has no "
                             f"{part}/config.json; expected a diffusers-style config folder")
    return config_dir


def _unet_weights_file(folder: Path) -> Path:
    unet = folder / "unet"
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                 "diffusion_pytorch_model.safetensors.index.json",
                 "diffusion_pytorch_model.fp16.safetensors.index.json",
                 "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"):
        if (unet / name).is_file():
            return unet / name
    raise ModelError(f"{folder}: no UNet weights in {unet} (expected "
                     f"diffusion_pytorch_model.safetensors or .bin)")


def weights_file(path: Path) -> Path:
    """The file whose sha256 is the model's hash: the file itself, or a folder's UNet weights.

    For a diffusers folder the UNet is by far the largest part and the one fine-tunes change,
    so its weights file stands for the model (for sharded weights: the shard index).
    """
    return _unet_weights_file(path) if path.is_dir() else path


def sibling_yaml(path: Path) -> Path:
    """The A1111-style original config beside a single file: ``<name>.yaml``."""
    return path.with_suffix(".yaml")


def _parameterization(data: Any) -> Any:
    model = data.get("model") if isinstance(data, dict) else None
    params = model.get("params") if isinstance(model, dict) else None
    return params.get("parameterization") if isinstance(params, dict) else None


def sibling_prediction_type(path: Path) -> str | None:
    """v_prediction when ``<name>.yaml`` says ``parameterization: "v"``, epsilon when it names
    another, None when there is no such file.  A broken yaml is a one-line ModelError."""
    config = sibling_yaml(path)
    if path.is_dir() or not config.is_file():
        return None
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ModelError(f"{config} (the config beside {path.name}) cannot be read: "
                         f"{type(error).__name__}; fix or remove it") from None
    value = _parameterization(data)
    if value is None:
        return None
    return V_PREDICTION if str(value).strip().lower() == "v" else EPSILON
