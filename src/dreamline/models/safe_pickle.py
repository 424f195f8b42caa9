"""Reading ``.ckpt`` pickles without ever running code from them.

``torch.load(weights_only=True)`` refuses any pickle that names a Python global outside a small
allowlist.  Original-release checkpoints name a few harmless ones beside their weights: the
PyTorch Lightning ``ModelCheckpoint`` callback saved in ``callbacks``, and numpy scalars and
dtypes (``global_step``, ``best_model_score``).  For exactly those names this module hands the
unpickler *inert stand-ins*: our own tiny classes that swallow their arguments and state and do
nothing else, so the real Lightning or numpy code is never looked up, let alone called.  Every
other global is refused with dreamline's own one-line message naming it.
"""

from __future__ import annotations

import pickle
import warnings
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dreamline.errors import ModelError


class InertStandIn:
    """Takes the place of an allowed foreign object; keeps nothing, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def inert_call(*args: Any, **kwargs: Any) -> InertStandIn:
    """Stands in for a foreign function (numpy's scalar reconstructor): returns a stand-in."""
    return InertStandIn()


# The globals original-release checkpoints need, each mapped to an inert stand-in.
STAND_INS: dict[str, Any] = {
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint": InertStandIn,
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint": InertStandIn,
    "numpy.core.multiarray.scalar": inert_call,
    "numpy._core.multiarray.scalar": inert_call,
    "numpy.dtype": InertStandIn,
}
for _bits in (8, 16, 32, 64):
    for _kind in ("Int", "UInt", "Float"):
        if _kind == "Float" and _bits == 8:
            continue
        STAND_INS[f"numpy.dtypes.{_kind}{_bits}DType"] = InertStandIn
STAND_INS["numpy.dtypes.BoolDType"] = InertStandIn

_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not|whose module)|unrecognized function (\S+)")
REFUSAL = ("dreamline refused to open it: a .ckpt is a Python pickle and this one asks for "
           "{what}, which could run code; use a .safetensors copy of the model")


def refused_global(error: BaseException) -> str | None:
    """The global a weights-only unpickler refused, from its message (None if it names none)."""
    match = _GLOBAL.search(str(error))
    if match is None:
        return None
    return match.group(1) or match.group(2)


def load_pickle(path: Path, *, mmap: bool) -> Any:
    """``torch.load(path, weights_only=True)`` with the inert stand-ins allowed (CPU tensors).

    Raises ModelError (one line) naming the first forbidden global; never suggests loading it
    unsafely.  Other failures (truncated file, bad zip) propagate for the caller to word.
    """
    allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (stand_in, name) for name, stand_in in STAND_INS.items()]
    try:
        # torch warns about legacy (non-zip) pickles before refusing them: ours is the one line
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        name = refused_global(error)
        if name is None and "Unsupported operand" not in str(error):
            raise
        what = f"the Python global {name}" if name else "an unsupported pickle operation"
        raise ModelError(f"{path}: {REFUSAL.format(what=what)}") from None
