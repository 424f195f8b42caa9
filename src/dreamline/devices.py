"""Which device the networks run on, in which floating-point precision, with which attention.

The choice is made once at start-up (``--device``/``--precision``) and printed as one line by
``describe()`` so a user can tell at a glance why a run is fast or slow.  A request for a device
that is not there, or for a precision the device cannot run well, is refused with a DeviceError
rather than silently replaced: a silent fallback to the CPU turns seconds into minutes.
"""

from __future__ import annotations

from typing import Any

import torch

from dreamline.errors import DreamlineError
from dreamline.plural import counted

PRECISIONS: tuple[str, ...] = ("auto", "float32", "float16", "bfloat16")
# The reference CLI called its mixed mode "autocast"; we always run one dtype, so it means "auto".
PRECISION_ALIASES: dict[str, str] = {"autocast": "auto", "fp32": "float32", "fp16": "float16",
                                     "half": "float16", "bf16": "bfloat16", "full": "float32"}
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
}


class DeviceError(DreamlineError):
    """A device or precision that this machine cannot provide."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def choose_device(requested: str | None = None) -> torch.device:
    """The named device, or the best one present: CUDA, then Apple MPS, then the CPU."""
    if requested is None or requested.strip().lower() in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    text = requested.strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device: {requested!r} is not a device; expected auto, cpu, cuda, "
                          f"cuda:N or mps") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device: {requested!r} is not available: this torch build or "
                              f"machine has no CUDA GPU; use --device cpu")
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise DeviceError(f"--device: {requested!r} is not available: this machine has "
                              f"{count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise DeviceError(f"--device: {requested!r} is not available: Apple MPS needs a "
                              f"Mac with Apple silicon and a torch build with MPS")
        return torch.device("mps")
    raise DeviceError(f"--device: {requested!r} is not supported; expected auto, cpu, cuda, "
                      f"cuda:N or mps")


def normalize_precision(precision: str) -> str:
    """The canonical precision name for ``precision`` or its alias; DeviceError if unknown."""
    text = precision.strip().lower()
    text = PRECISION_ALIASES.get(text, text)
    if text not in PRECISIONS:
        raise DeviceError(f"--precision: {precision!r} is not a precision; expected one of "
                          f"{', '.join(PRECISIONS)}")
    return text


def choose_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype:
    """The dtype to run in: float16 on CUDA and float32 elsewhere, unless one is named.

    float16 on the CPU is refused: many CPU kernels lack half-precision versions or emulate
    them, so it is slower than float32 and may fail half-way through a run.
    """
    device = torch.device(device)
    name = normalize_precision(precision)
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtype = _DTYPES[name]
    if dtype == torch.float16 and device.type == "cpu":
        raise DeviceError("--precision: float16 is not supported on the cpu (slow and "
                          "incomplete there); use float32, or bfloat16 on a CPU that has it")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"--precision: bfloat16 is not supported by {device_name(device)}; "
                          f"use float16 or float32")
    return dtype


def device_name(device: torch.device | str) -> str:
    """A human name for the device: the GPU's model, or the CPU's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    if device.type == "cpu":
        return f"cpu ({counted(torch.get_num_threads(), 'thread')})"
    return str(device)


def dtype_name(dtype: torch.dtype) -> str:
    """'float16' for torch.float16, and so on."""
    return str(dtype).removeprefix("torch.")


def describe(device: torch.device | str, dtype: torch.dtype) -> str:
    """One line for the start-up banner: 'device cuda:0 (NVIDIA ...), precision float16'."""
    return f"device {device_name(device)}, precision {dtype_name(dtype)}"


def attention_kind(*networks: Any) -> str:
    """Which attention the networks (diffusers UNet, VAE) compute with: 'sdpa' when every
    attention layer uses torch's scaled_dot_product_attention (diffusers' AttnProcessor2_0,
    its default), 'sliced' after attention slicing, else the processor classes' names."""
    names: set[str] = set()
    for network in networks:
        processors = getattr(network, "attn_processors", None)
        if processors is not None:
            names.update(type(processor).__name__ for processor in processors.values())
    if names == {"AttnProcessor2_0"}:
        return "sdpa"
    if names and all(name.startswith("SlicedAttnProcessor") for name in names):
        return "sliced"
    return ", ".join(sorted(names)) or "none"
