"""LoRAs: finding the files, reading them once, checking what they are for, and switching them
on and off in a loaded model, one prompt line at a time.

A name is a file in the LoRA folder (``loras/`` beside models.yaml; ``detail`` finds
``detail.safetensors``, ``.pt``, ``.ckpt`` or ``.bin``) or a path.  Files are read by content
(models.checkpoint.read_tensors: safetensors, or weights-only pickles) and cached while they are
unchanged, so the same LoRA on every line is not re-read.  Kohya/A1111 and diffusers/peft key
layouts are converted and injected by diffusers' own LoRA loading (peft layers); a model keeps
the layers once injected, and each line sets which are active at which weight.  A line without
LoRAs disables them all: peft's layers then run the original layer alone, so its pixels are
those of the model before any LoRA was used.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.loaders.lora_base import (
    disable_lora_for_text_encoder,
    enable_lora_for_text_encoder,
    set_adapters_for_text_encoder,
)

from dreamline.errors import ModelError
from dreamline.lora_tags import LORA_SUFFIXES, lora_candidates, lora_folder  # noqa: F401 (re-exported)
from dreamline.models.checkpoint import first_line, read_tensors
from dreamline.models.hashing import HashCache
from dreamline.models.types import LoadedModel
from dreamline.quiet import quiet_library

_CONTEXT_NAMES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL", 4096: "SD 3 / Flux"}
_DOWN_MARKS = ("lora_down.weight", "lora_A.weight", "lora.down.weight", "lora_A.default.weight")
_SDXL_PREFIXES = ("lora_te1_", "lora_te2_", "text_encoder_2.", "lora_unet_input_blocks_")


@dataclass(frozen=True)
class LoraFile:
    """One LoRA file as read from disk (CPU tensors, as stored; never changed)."""

    name: str  # as the user wrote it
    path: Path
    short_hash: str  # first 10 hex digits of the file's sha256, as for models
    tensors: dict[str, torch.Tensor]
    a1111_hash: str = ""  # A1111's LoRA hash (12 hex, its "Lora hashes"); "" when not known

    @property
    def adapter(self) -> str:
        """The adapter name its layers get inside a model (one per file content)."""
        return f"lora_{self.short_hash}"


def _context_width(tensors: dict[str, torch.Tensor], *parts: str) -> int | None:
    """Input width of the first LoRA down-projection whose key holds all ``parts``."""
    for key, tensor in tensors.items():
        if all(part in key for part in parts) and key.endswith(_DOWN_MARKS) and tensor.ndim == 2:
            return int(tensor.shape[1])
    return None


def check_architecture(lora: LoraFile, model: LoadedModel) -> None:
    """Refuse a LoRA made for another architecture in one line naming what it is for."""
    keys = list(lora.tensors)
    where = f"LoRA {lora.name!r} ({lora.path})"
    if any(key.startswith(_SDXL_PREFIXES) for key in keys):
        raise ModelError(f"{where} is for SDXL; expected a LoRA for SD 1.x models")
    want = int(model.unet.config.cross_attention_dim)
    found = _context_width(lora.tensors, "attn2", "to_k")
    text_width = int(model.text_encoder.config.hidden_size)
    text_found = _context_width(lora.tensors, "q_proj")
    for got, expected in ((found, want), (text_found, text_width)):
        if got is not None and got != expected:
            kind = _CONTEXT_NAMES.get(got, f"a model with {got}-wide text features")
            mine = _CONTEXT_NAMES.get(expected, f"{expected}-wide text features")
            raise ModelError(f"{where} is for {kind}; expected a LoRA for this model "
                             f"({mine})")
    if not any("lora" in key.lower() for key in keys):
        raise ModelError(f"{where} holds no LoRA weights (no 'lora' keys); expected a kohya/A1111 "
                         f"or diffusers/peft LoRA file")


class LoraLibrary:
    """Finds LoRA files by name and keeps each one read once while it is unchanged.

    ``folder``: where names are looked up (None: paths only).  ``hashes``: where file hashes
    are remembered (the models' hash cache).  ``reads`` counts files read from disk.
    """

    def __init__(self, folder: Path | None, *, hashes: HashCache | None = None) -> None:
        self.folder = folder
        self.hashes = hashes if hashes is not None else HashCache(None)
        self.reads = 0
        self._files: dict[tuple[str, int, int], LoraFile] = {}

    def find(self, name: str) -> Path:
        """The file a name means: a path as given, else ``<folder>/<name><suffix>``."""
        given = Path(name).expanduser()
        if given.is_file():
            return given
        tried: list[str] = []
        if self.folder is not None:
            for candidate in lora_candidates(self.folder, name):
                if candidate.is_file():
                    return candidate
            tried.append(f"{self.folder}/{name}{{{','.join(LORA_SUFFIXES)}}}")
        where = f"no {tried[0]}" if tried else "no such file (no LoRA folder is set)"
        raise ModelError(f"LoRA {name!r}: {where}; expected a LoRA file in the loras folder "
                         f"beside models.yaml, or a path")

    def get(self, name: str) -> LoraFile:
        """The LoRA ``name`` names, read from disk only when new or changed."""
        path = self.find(name)
        try:
            stat = path.stat()
        except OSError as error:
            raise ModelError(f"LoRA {name!r}: {path} cannot be read: {first_line(error)}") from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        known = self._files.get(key)
        if known is not None:
            return known if known.name == name else replace(known, name=name, path=path)
        tensors = read_tensors(path, "LoRA")
        self.reads += 1
        lora = LoraFile(name=name, path=path, short_hash=self.hashes.short_hash(path),
                        tensors=tensors, a1111_hash=self.hashes.a1111_lora_hash(path))
        self._files[key] = lora
        return lora


class _Host(StableDiffusionLoraLoaderMixin):
    """The two networks of a loaded model, as diffusers' LoRA loading expects a pipeline."""

    hf_device_map = None

    def __init__(self, unet: Any, text_encoder: Any) -> None:
        self.unet = unet
        self.text_encoder = text_encoder

    @property
    def components(self) -> dict[str, Any]:
        return {"unet": self.unet, "text_encoder": self.text_encoder}


def _adapters(module: Any) -> set[str]:
    config = getattr(module, "peft_config", None)
    return set(config) if isinstance(config, dict) else set()


# torch's load_state_dict wording: the first mismatch names a layer and both shapes
_MISMATCH = re.compile(r"size mismatch for ([\w.]+): copying a param with shape "
                       r"torch\.Size\((\[[^\]]*\])\) from checkpoint, the shape in current "
                       r"model is torch\.Size\((\[[^\]]*\])\)")


def _why(error: BaseException) -> str:
    """The reason in one line: a layer of another size, named, or the error's first line."""
    found = _MISMATCH.search(str(error))
    if found is None:
        return first_line(error)
    layer = re.sub(r"\.lora_[AB]\.[^.]+\.weight$", "", found.group(1))
    return (f"its layer {layer} is {found.group(2)} but this model's is {found.group(3)}; "
            "expected a LoRA made for this model's architecture")


def _inject(model: LoadedModel, lora: LoraFile) -> None:
    """Add the LoRA's layers to the model's networks (once per model and file)."""
    try:
        # diffusers and peft log a failed load (a dozen lines of shapes) before raising it;
        # the raise becomes dreamline's one line (_why), so nothing of theirs is shown
        with warnings.catch_warnings(), quiet_library("diffusers", "peft",
                                                      level=logging.CRITICAL + 1):
            warnings.simplefilter("ignore", UserWarning)  # peft's "several adapters": by design
            _Host(model.unet, model.text_encoder).load_lora_weights(
                dict(lora.tensors), adapter_name=lora.adapter)
    except (ValueError, KeyError, RuntimeError, IndexError) as error:
        raise ModelError(f"LoRA {lora.name!r} ({lora.path}) does not fit this model: "
                         f"{_why(error)}") from None
    if lora.adapter not in _adapters(model.unet) | _adapters(model.text_encoder):
        raise ModelError(f"LoRA {lora.name!r} ({lora.path}) changed no layer of this model; "
                         f"expected a LoRA for SD 1.x")


def use_loras(model: LoadedModel, chosen: Sequence[tuple[LoraFile, float]],
              report: Callable[[str], None] | None = None) -> None:
    """Make exactly ``chosen`` (file, weight) active in ``model``; none: the plain model.

    The same file twice adds its weights.  Raises ModelError for a LoRA of another
    architecture or one that fits no layer.
    """
    weights: dict[str, float] = {}
    for lora, weight in chosen:
        check_architecture(lora, model)
        if lora.adapter not in _adapters(model.unet) | _adapters(model.text_encoder):
            if report is not None:
                report(f"applying LoRA {lora.name!r} ({lora.path.name}, hash {lora.short_hash})")
            _inject(model, lora)
        weights[lora.adapter] = weights.get(lora.adapter, 0.0) + float(weight)
    unet_names = [name for name in weights if name in _adapters(model.unet)]
    if _adapters(model.unet):
        if unet_names:
            model.unet.enable_lora()
            model.unet.set_adapters(unet_names, [weights[name] for name in unet_names])
        else:
            model.unet.disable_lora()
    text_names = [name for name in weights if name in _adapters(model.text_encoder)]
    if _adapters(model.text_encoder):
        if text_names:
            enable_lora_for_text_encoder(model.text_encoder)
            set_adapters_for_text_encoder(text_names, model.text_encoder,
                                          [weights[name] for name in text_names])
        else:
            disable_lora_for_text_encoder(model.text_encoder)
