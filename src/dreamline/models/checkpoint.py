"""Reading a CompVis single file by its content, safely, after checking what it holds.

The file type comes from the first bytes, not the name: a ``.safetensors`` file named ``.ckpt``
loads.  Pickles go through models.safe_pickle (weights only, inert stand-ins for Lightning and
numpy objects).  Weights nested under ``state_dict``/``model``/``module`` are unwrapped.  Before
gigabytes are read, the key names are checked (models.kinds) so a LoRA, an embedding, a VAE or an
SDXL file is named as such.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from dreamline.errors import ModelError
from dreamline.models.kinds import UNET_FIRST_CONV, V_PRED_KEY, sd1_problem
from dreamline.models.safe_pickle import load_pickle

_NESTING_KEYS = ("state_dict", "model", "module")
_MAX_HEADER = 100 * 2**20  # safetensors headers are a few hundred kB at most


@dataclass
class Checkpoint:
    """A single file's tensors (CPU, as stored) and what its contents say about it."""

    tensors: dict[str, torch.Tensor]
    v_pred: bool = False  # it carries the ``v_pred`` marker key of v-prediction fine-tunes


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def sniff(path: Path) -> str | None:
    """What a non-model file really is, from its first bytes, when that explains a failure."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF8", b"RIFF")):
        return "an image"
    if head.lstrip().startswith((b"<", b"{", b"version", b"#")):
        return "a text file"
    return None


def container(path: Path) -> str | None:
    """'safetensors', 'zip' (torch.save), 'pickle' (legacy torch.save) or None, by content."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
            size = path.stat().st_size
    except OSError:
        return None
    if len(head) == 9:
        (header_length,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and header_length <= min(_MAX_HEADER, size - 8):
            return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "zip" if zipfile.is_zipfile(path) else None
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode, as legacy torch.save writes
        return "pickle"
    return None


def _refuse(path: Path, keys: list[str], first_conv: Any = None, vae_given: bool = False
            ) -> None:
    problem = sd1_problem(keys, first_conv, vae_given=vae_given)
    if problem is not None:
        raise ModelError(f"{path} is not an SD 1.x model: {problem}")


def _read_safetensors(path: Path, vae_given: bool) -> Checkpoint:
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            first_conv = (handle.get_slice(UNET_FIRST_CONV).get_shape()
                          if UNET_FIRST_CONV in keys else None)
    except (SafetensorError, OSError) as error:
        raise ModelError(f"{path} is not a safetensors file: it cannot be read "
                         f"({first_line(error)})") from None
    _refuse(path, keys, first_conv, vae_given)  # before reading gigabytes
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise ModelError(f"{path}: the safetensors file is damaged: {first_line(error)}") from None
    return Checkpoint(tensors, V_PRED_KEY in tensors)


def _unwrap(data: Any) -> Any:
    """The weights dict inside {"state_dict": ...}, {"model": ...} or {"module": ...} wrappers."""
    for _ in range(3):
        if not isinstance(data, dict):
            break
        inner = next((data[key] for key in _NESTING_KEYS if isinstance(data.get(key), dict)), None)
        if inner is None:
            break
        data = inner
    return data


def _read_pickle(path: Path, is_zip: bool, vae_given: bool) -> Checkpoint:
    try:
        data = load_pickle(path, mmap=is_zip)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError) as error:
        raise ModelError(f"{path} is not a readable PyTorch checkpoint: "
                         f"{first_line(error)}") from None
    data = _unwrap(data)
    if not isinstance(data, dict):
        raise ModelError(f"{path} holds a {type(data).__name__}, not a state dict; expected an "
                         f"SD 1.x checkpoint")
    tensors = {key: value for key, value in data.items()
               if isinstance(key, str) and isinstance(value, torch.Tensor)}
    first = tensors.get(UNET_FIRST_CONV)
    _refuse(path, [key for key in data if isinstance(key, str)],
            None if first is None else tuple(first.shape), vae_given)
    return Checkpoint(tensors, V_PRED_KEY in tensors)


def read_checkpoint(path: Path, *, vae_given: bool = False) -> Checkpoint:
    """A CompVis single file's tensors (CPU), after checking it is a whole SD 1.x model
    (without a VAE of its own when ``vae_given``: one comes from elsewhere).

    Raises ModelError (one line) for a file of another kind, a damaged file, a pickle that
    needs code, or a model of another kind (naming what it is).
    """
    kind = container(path)
    if kind == "safetensors":
        return _read_safetensors(path, vae_given)
    if kind in ("zip", "pickle"):
        return _read_pickle(path, is_zip=kind == "zip", vae_given=vae_given)
    what = sniff(path)
    expected = ("a safetensors file" if path.suffix.lower() == ".safetensors"
                else "a PyTorch checkpoint")
    found = f"it is {what}" if what else "its contents are neither safetensors nor a pickle"
    raise ModelError(f"{path} is not {expected}: {found}")


def read_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Every tensor of any single file (a LoRA, a VAE), by content: safetensors, or a
    weights-only pickle (nesting unwrapped).  No check of what the file is for; ModelError
    (one line, naming ``what``) for a file that is neither or is damaged."""
    kind = container(path)
    try:
        if kind == "safetensors":
            return load_file(str(path), device="cpu")
        if kind in ("zip", "pickle"):
            data = _unwrap(load_pickle(path, mmap=kind == "zip"))
        else:
            found = sniff(path)
            why = f"it is {found}" if found else "expected safetensors or a PyTorch file"
            raise ModelError(f"{path} is not a {what} file: {why}")
    except (SafetensorError, pickle.UnpicklingError, EOFError, OSError, RuntimeError,
            ValueError) as error:
        raise ModelError(f"{path} is not a readable {what} file: {first_line(error)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} holds a {type(data).__name__}, not a state dict; expected a "
                         f"{what} file")
    return {key: value for key, value in data.items()
            if isinstance(key, str) and isinstance(value, torch.Tensor)}
