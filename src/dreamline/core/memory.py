"""Memory-saving modes of a loaded model: the rungs of the out-of-memory ladder, VAE tiling,
and which attention kernel the networks use.

The ladder (``repl/memory.py`` climbs it) has four rungs, tried in this order after a request
ran out of memory:

1. ``free``: Python's garbage and CUDA's cached blocks are given back, nothing else changes;
2. ``attention slicing``: the UNet computes attention a slice of heads at a time (diffusers'
   ``set_attention_slice("auto")``) instead of in one scaled-dot-product call;
3. ``VAE tiling``: images larger than the VAE's tile (SD 1.x: 512 pixels) are encoded and
   decoded in overlapping tiles that are blended (diffusers' ``AutoencoderKL.enable_tiling``;
   pixels near the tile seams change slightly, smaller images not at all);
4. ``CPU offload`` (CUDA only): each network lives in CPU memory and is moved to the GPU only
   while it runs (accelerate's ``cpu_offload_with_hook``, as diffusers' model offload).

Rungs 2-4 change the model's networks in place, so they stay on for that model (every later
request of the session on it) and pile up: a model on rung 4 also slices and tiles.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import torch

from dreamline.models.types import LoadedModel

FREE = "free"
ATTENTION_SLICING = "attention slicing"
VAE_TILING = "VAE tiling"
CPU_OFFLOAD = "CPU offload"
RUNGS: tuple[str, ...] = (FREE, ATTENTION_SLICING, VAE_TILING, CPU_OFFLOAD)

# The networks' own memory of which modes are on, keyed by the UNet: LoadedModel copies
# (a cached model handed out again) share their networks, and so their modes.
_MODES: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def rungs_for(device: torch.device | str) -> tuple[str, ...]:
    """The ladder on ``device``: CPU offload only helps where the networks sit on a GPU."""
    if torch.device(device).type == "cuda":
        return RUNGS
    return RUNGS[:-1]


def modes(model: LoadedModel) -> tuple[str, ...]:
    """The memory-saving modes on for ``model``'s networks, in ladder order."""
    on = _MODES.get(model.unet, set())
    return tuple(rung for rung in RUNGS if rung in on)


def free(device: torch.device | str | None) -> None:
    """Give back Python's garbage and, on CUDA, the allocator's cached blocks."""
    gc.collect()
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def apply(model: LoadedModel, rung: str) -> None:
    """Switch ``rung`` on for ``model`` (``free`` frees and changes nothing).

    Raises ValueError for a name that is not a rung.
    """
    if rung not in RUNGS:
        raise ValueError(f"{rung!r} is not a rung of the memory ladder; expected one of "
                         f"{', '.join(RUNGS)}")
    if rung == FREE:
        free(model.device)
        return
    if rung in modes(model):
        return
    if rung == ATTENTION_SLICING:
        model.unet.set_attention_slice("auto")
    elif rung == VAE_TILING:
        enable_vae_tiling(model.vae)
    else:
        cpu_offload(model)
    _MODES.setdefault(model.unet, set()).add(rung)


def enable_vae_tiling(vae: Any) -> None:
    """Encode and decode in overlapping, blended tiles when an image is larger than the VAE's
    tile (``vae.config.sample_size`` pixels; SD 1.x: 512); smaller images are unchanged."""
    vae.enable_tiling()


def use_vae_tiling(model: LoadedModel) -> None:
    """``--vae_tiling``: tiling on from the start, remembered like the ladder's rung."""
    apply(model, VAE_TILING)


def cpu_offload(model: LoadedModel) -> None:
    """Keep the text encoder, UNet and VAE in CPU memory; each is moved to ``model.device``
    while it runs and the one before it moved back (accelerate's hooks, in a ring, so at most
    one network is on the GPU).  Needs ``accelerate`` (installed with peft)."""
    from accelerate import cpu_offload_with_hook

    networks = (model.text_encoder, model.unet, model.vae)
    hooks = []
    previous = None
    for network in networks:
        network.to("cpu")
        _, previous = cpu_offload_with_hook(network, model.device, prev_module_hook=previous)
        hooks.append(previous)
    hooks[0].hook.prev_module_hook = hooks[-1]  # the next command's text encoder frees the VAE
    free(model.device)


def execution_device(module: Any) -> torch.device:
    """Where ``module`` runs: its offload hook's device, else where its weights are."""
    hook = getattr(module, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is not None:
        return torch.device(device)
    return next(module.parameters()).device
