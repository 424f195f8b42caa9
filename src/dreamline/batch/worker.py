"""The Ray worker: one per GPU (or per N CPU cores), loading each model once for many lines.

``LineWorker`` is a plain class; the driver turns it into a Ray actor (``ray.remote``), so this
module imports no Ray.  A worker runs exactly what a local run's generator runs, with the
driver's request (seed already resolved) and init pixels, and sends back the finished images;
the driver writes every file.  A user-fixable failure comes back as the exception itself (the
driver reports it as a local run would); anything else is raised, so Ray reports it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError
from dreamline.request import Request


@dataclass(frozen=True)
class ModelInfo:
    """What the driver needs of a model without loading it: sizes and a label."""

    name: str
    short_hash: str
    default_width: int
    default_height: int
    size_multiple: int
    device: str  # e.g. "cuda:0", "cpu" (a worker's own device: never used on the driver)

    @property
    def label(self) -> str:
        return f"{self.name} [{self.short_hash}]"


@dataclass(frozen=True)
class Outcome:
    """A line's images (GeneratedImage list), or the DreamlineError it failed with."""

    images: tuple[Any, ...] = ()
    error: DreamlineError | None = None
    seconds: float = 0.0


class LineWorker:
    """Holds a ModelManager; ``generate`` serves one line at a time."""

    def __init__(self, models_file: str | None, device: str | None, precision: str,
                 threads: int | None) -> None:
        from dreamline.models.manager import ModelManager

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.models = ModelManager(models_file=Path(models_file) if models_file else None,
                                   device=device, precision=precision, wanted=None,
                                   say=lambda text: None)
        self._loaded: Any = None
        self._generator: Any = None
        self.lines = 0
        self.images = 0
        self.busy = 0.0

    def where(self) -> str:
        """'host pid 1234'."""
        return f"{socket.gethostname()} pid {os.getpid()}"

    def _model(self, name: str | None) -> Any:
        if name is not None and name != self.models.wanted:
            return self.models.switch(name)
        return self.models.current()

    def model_info(self, name: str | None) -> ModelInfo | DreamlineError:
        """Load ``name`` (None: the registry's default) and describe it; or the ModelError."""
        try:
            model = self._model(name)
        except DreamlineError as exc:
            return exc
        return ModelInfo(model.name, model.short_hash, model.default_width,
                         model.default_height, model.size_multiple, str(model.device))

    def generate(self, name: str | None, request: Request, init: Any) -> Outcome:
        """Every image of ``request`` with model ``name`` (PreparedInit ``init`` for img2img)."""
        from dreamline.core import Generator

        started = time.perf_counter()
        try:
            model = self._model(name)
            if model is not self._loaded:
                self._generator = None
                self._generator = Generator(model)
                self._loaded = model
            images = tuple(self._generator.iter_generate(request, init=init))
        except DreamlineError as exc:
            return Outcome(error=exc)
        seconds = time.perf_counter() - started
        self.lines += 1
        self.images += len(images)
        self.busy += seconds
        return Outcome(images=images, seconds=seconds)

    def stats(self) -> tuple[str, int, int, float]:
        """(where, lines, images, seconds busy)."""
        return self.where(), self.lines, self.images, self.busy
