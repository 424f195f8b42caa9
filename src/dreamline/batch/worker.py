"""The Ray worker: one per GPU (or per N CPU cores), loading each model once for many lines.

``LineWorker`` is a plain class; the driver turns it into a Ray actor (``ray.remote``), so this
module imports no Ray.  A worker runs exactly what a local run's generator runs, with the
driver's request (seed already resolved) and init pixels, and sends back the finished images;
the driver writes every file.  It is built from the launch options a local run's models and
generators take (``WorkerSettings``: --vae, --vae_tiling, --embedding_path, --compile, the
models file with its ``loras/`` and ``embeddings/`` folders), so a LoRA or an embedding gives
the same pixels on a worker as at home, and it climbs the same out-of-memory ladder
(repl/memory.py).  A user-fixable failure comes back as the exception itself (the driver
reports it as a local run would); anything else is raised, so Ray reports it.
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
class WorkerSettings:
    """The launch options that shape a worker's models and generators, as in a local run.

    Paths are strings that must be valid on the worker's machine (a cluster shares them)."""

    models_file: str | None = None
    device: str | None = None
    precision: str = "auto"
    threads: int | None = None  # torch CPU threads (a CPU worker); None: torch's default
    vae: str | None = None  # --vae
    vae_tiling: bool = False  # --vae_tiling
    embedding_paths: tuple[str, ...] = ()  # --embedding_path
    compile_unet: bool = False  # --compile


@dataclass(frozen=True)
class Outcome:
    """A line's finished images (GeneratedImage list) and, if it stopped, the DreamlineError
    it stopped with (images made before an out-of-memory failure are kept, as locally);
    ``notes``: the lines a local run would have said (the memory ladder's, the generator's)."""

    images: tuple[Any, ...] = ()
    error: DreamlineError | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()


class LineWorker:
    """Holds a ModelManager; ``generate`` serves one line at a time."""

    def __init__(self, settings: WorkerSettings) -> None:
        from dreamline.models.manager import ModelManager
        from dreamline.repl.generators import ModelGenerators

        if settings.threads is not None:
            import torch

            torch.set_num_threads(settings.threads)
        models_file = Path(settings.models_file) if settings.models_file else None
        self.notes: list[str] = []
        self.models = ModelManager(models_file=models_file, device=settings.device,
                                   precision=settings.precision, wanted=None,
                                   say=lambda text: None,  # the driver reports model loads
                                   vae=Path(settings.vae) if settings.vae else None,
                                   vae_tiling=settings.vae_tiling)
        self.generators = ModelGenerators(
            self.models, say=self.notes.append, models_file=models_file,
            embedding_paths=tuple(Path(path) for path in settings.embedding_paths),
            compile_unet=settings.compile_unet)
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
        """Every image of ``request`` with model ``name`` (PreparedInit ``init`` for img2img).

        Out of memory: free, retry the images not yet made with the next memory-saving mode
        (repl/memory.py); when every mode failed, the finished images and an OutOfMemory error.
        """
        from dreamline.repl.memory import MemoryLadder, free_memory, is_out_of_memory
        from dreamline.repl.runner import OutOfMemory

        started = time.perf_counter()
        self.notes.clear()
        done: list[Any] = []
        try:
            self._model(name)
            generator = self.generators()

            def attempt(first: int) -> None:
                for image in generator.iter_generate(request, init=init, first=first):
                    done.append(image)

            size = f"{request.width or generator.model.default_width}x" \
                   f"{request.height or generator.model.default_height}"
            ladder = MemoryLadder(generator.model, size, self.notes.append)
            try:
                ladder.run(attempt, lambda: len(done))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                free_memory(generator.model.device)
                tried = f"; retried {ladder.tried_text}" if ladder.tried else ""
                raise OutOfMemory(f"out of memory at {size} on {self.where()}; try --fit or a "
                                  f"smaller -W/-H{tried}") from None
        except DreamlineError as exc:
            return Outcome(images=tuple(done), error=exc, notes=tuple(self.notes))
        seconds = time.perf_counter() - started
        self.lines += 1
        self.images += len(done)
        self.busy += seconds
        return Outcome(images=tuple(done), seconds=seconds, notes=tuple(self.notes))

    def stats(self) -> tuple[str, int, int, float]:
        """(where, lines, images, seconds busy)."""
        return self.where(), self.lines, self.images, self.busy
