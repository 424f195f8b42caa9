"""Out of memory during a request: free, retry, and climb the ladder of memory-saving modes.

The rungs and what each changes are in ``dreamline.core.memory`` (imported only when a request
has run out of memory, so this module stays torch-free).  A retry makes only the images the
command has not finished (the caller passes how many are done), so nothing is made twice and
the finished files stay.  The rung that worked stays on for the model; one line says which.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

Say = Callable[[str], None]
_OOM = ("out of memory", "DefaultCPUAllocator", "not enough memory", "Cannot allocate memory")
FREE = "free"  # the first rung's name in dreamline.core.memory.RUNGS


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's CPU/CUDA allocation failures (torch.OutOfMemoryError is a RuntimeError
    too) and Python's MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OOM)


def free_memory(device: Any) -> None:
    """Give back what a failed request held: Python garbage and CUDA's cached blocks."""
    gc.collect()
    if getattr(device, "type", "") == "cuda":
        import torch

        torch.cuda.empty_cache()


def _label(rung: str) -> str:
    return "after freeing memory" if rung == FREE else f"with {rung}"


class MemoryLadder:
    """Runs one request's attempts; ``model`` None or without networks (a generator without a
    LoadedModel, e.g. a Ray driver's): only ``free``.

    ``size`` names the request's size for the lines ("1024x1024"), or says it when asked (an
    init image's is known once it is read).  ``tried`` lists the rungs used, in order, for the
    caller's final error line when every rung failed.
    """

    def __init__(self, model: Any, size: str | Callable[[], str], say: Say) -> None:
        self.model = model
        self._size = size
        self.say = say
        self.tried: list[str] = []

    @property
    def size(self) -> str:
        """The request's size, e.g. '1024x1024'."""
        return self._size() if callable(self._size) else self._size

    def _rungs(self) -> list[str]:
        """What is left to try: ``free`` first, then the model's modes not yet on."""
        if getattr(self.model, "unet", None) is None:  # no networks here (a Ray driver's)
            return [FREE]
        from dreamline.core import memory

        on = memory.modes(self.model)
        return [rung for rung in memory.rungs_for(self.model.device) if rung not in on]

    def run(self, attempt: Callable[[int], None], done: Callable[[], int]) -> None:
        """``attempt(first)`` makes the images from index ``first`` on; ``done()`` says how many
        are finished.  Each out-of-memory failure frees memory and retries with the next rung;
        when no rung is left the last failure is raised again (the caller turns it into its
        one-line error).  Any other exception passes through at once."""
        rungs = self._rungs()
        while True:
            failed = False
            try:
                attempt(done())
            except Exception as exc:
                if not is_out_of_memory(exc) or not rungs:
                    raise
                failed = True
            if not failed:
                if self.tried:
                    kept = "" if self.tried[-1] == FREE else " (kept on for this model)"
                    self.say(f">> out of memory at {self.size}; retried "
                             f"{_label(self.tried[-1])}: worked{kept}")
                return
            rung = rungs.pop(0)
            free_memory(getattr(self.model, "device", None))
            if rung != FREE:
                from dreamline.core import memory

                memory.apply(self.model, rung)
            self.tried.append(rung)

    @property
    def tried_text(self) -> str:
        """'after freeing memory, with attention slicing, ...' ('' when nothing was tried)."""
        return ", ".join(_label(rung) for rung in self.tried)
