"""``--compile``: the UNet through torch.compile, off by default.

torch.compile is lazy: the first call with a new input shape traces and compiles (tens of
seconds to minutes on a CPU), later calls of that shape run the compiled code.  ``CompiledUNet``
pays that once per model (one per Generator) and per shape, and says so in one line:
``compiled the UNet for 64x64 latents in 41.2 s (first call included)``.  The compiled kernels
may round differently from eager PyTorch, so pixels can differ slightly from a run without
--compile; that is why it is a choice and not the default.

Lines that change the UNet's modules in place (``--seamless`` padding, LoRA layers) run the
plain UNet, so a compiled graph never runs with weights or padding it was not traced for.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

import torch

from dreamline.errors import DreamlineError

Report = Callable[[str], None]
Compile = Callable[[Any], Any]


class CompileError(DreamlineError):
    """--compile cannot work in this environment (one line, saying why)."""


def check_compile_available(device: str = "cpu") -> None:
    """Raise CompileError when torch.compile cannot run here: no dynamo for this Python, or no
    C compiler for the CPU backend (inductor builds C++ kernels with gcc/cc)."""
    from torch import _dynamo

    if not _dynamo.is_dynamo_supported():
        raise CompileError("--compile: torch.compile is not supported by this Python/torch; "
                           "run without --compile")
    if not device.startswith("cuda") and not any(shutil.which(name)
                                                 for name in ("gcc", "cc", "clang")):
        raise CompileError("--compile: no C compiler (gcc, cc or clang) found; torch.compile "
                           "needs one for the CPU; install one or run without --compile")


def _torch_compile(module: Any) -> Any:
    return torch.compile(module)


class CompiledUNet:
    """The model's UNet, compiled on first use of each shape; called like the UNet itself
    (``unet(x (n, c, h, w), t, encoder_hidden_states=(n, tokens, width), return_dict=False)``).

    ``compile_with`` replaces torch.compile (tests pass a cheap stand-in).
    """

    def __init__(self, unet: Any, report: Report, *, compile_with: Compile | None = None
                 ) -> None:
        self.unet = unet
        self.config = unet.config  # what is_inpainting and friends read
        self.report = report
        self._compile = compile_with if compile_with is not None else _torch_compile
        self._compiled: Any = None
        self.shapes: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()

    def __call__(self, x: torch.Tensor, t: torch.Tensor, *, encoder_hidden_states: torch.Tensor,
                 return_dict: bool = False) -> Any:
        if self._compiled is None:
            self._compiled = self._compile(self.unet)
        key = (tuple(x.shape), tuple(encoder_hidden_states.shape))
        if key in self.shapes:
            return self._compiled(x, t, encoder_hidden_states=encoder_hidden_states,
                                  return_dict=return_dict)
        started = time.perf_counter()
        out = self._compiled(x, t, encoder_hidden_states=encoder_hidden_states,
                             return_dict=return_dict)
        self.shapes.add(key)
        self.report(f"compiled the UNet for {x.shape[-1]}x{x.shape[-2]} latents in "
                    f"{time.perf_counter() - started:.1f} s (first call included)")
        return out
