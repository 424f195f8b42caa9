"""Run one parsed request to files: the output folder checked, --dry_run, the estimate and
the out-of-memory ladder around the command's job (repl/job.py: each image saved as it
finishes, the ``Outputs:`` lines and the logs).

Images are written the moment the generator yields them, so an interrupt or a failure half-way
through a command keeps (and lists) the finished ones.  The output folder is checked before
any work.  Out of memory is one line with the size and what to try, and the memory the request
held is given back.  The session's generators are repl/generators.py's ModelGenerators.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from dreamline.errors import DreamlineError
from dreamline.repl import forecast as forecasts
from dreamline.repl.context import CommandInterrupted, OnSaved
from dreamline.repl.generators import ModelGenerators
from dreamline.repl.inputs import run_size
from dreamline.repl.job import CommandJob, SaveFailed, reset_cuda_peak
from dreamline.repl.memory import MemoryLadder, free_memory, is_out_of_memory
from dreamline.repl.settings import Settings
from dreamline.request import Request

__all__ = ["ModelGenerators", "OutOfMemory", "Runner", "SaveFailed", "check_writable"]

Say = Callable[[str], None]


class OutOfMemory(DreamlineError):
    """The request did not fit in memory; the message names the size and what to try."""


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and make sure a file can be written in it (OutputError)."""
    from dreamline.outputs import OutputDir, OutputError

    OutputDir(directory).ensure()
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputError(f"output directory {str(directory)!r} is not writable: "
                          f"{exc.strerror or exc}") from None


class Runner:
    """Runs requests to files for the session (the RequestRunner of repl/context.py)."""

    def __init__(self, settings: Settings, generators: Callable[[], Any], *, say: Say = print,
                 progress_stream: TextIO | None = None, progress: bool | None = None,
                 store: forecasts.ThroughputStore | None = None,
                 confirm: forecasts.Confirm | None = None) -> None:
        self.settings = settings
        self.generators = generators  # the generator to use now (loads the model on first use)
        self.say = say
        self.progress_stream = progress_stream if progress_stream is not None else sys.stderr
        self.progress = progress  # None: a bar only on a terminal
        # --each_image: resolved init image path -> the tag its outputs are named with
        self.name_tags: dict[str, str] = {}
        # confirm: asks before a very long run (None: not at a terminal: a warning instead)
        self.store = store if store is not None else forecasts.default_store()
        self.confirm = confirm

    def name_tag(self, request: Request) -> str | None:
        """The tag of ``NNNNNN.<seed>.<tag>.png`` for this request (None: the plain name)."""
        if not self.name_tags or request.init_img is None:
            return None
        return self.name_tags.get(str(Path(request.init_img).resolve()))

    def outdir_for(self, request: Request) -> Path:
        from dreamline import outputs

        base = Path(request.outdir).expanduser() if request.outdir is not None \
            else self.settings.outdir
        if self.settings.prompt_as_dir:
            return base / outputs.safe_dir_name(request.prompt)
        return base

    def run(self, request: Request, on_saved: OnSaved) -> None:
        """Generate ``request``; every finished image is saved, reported to ``on_saved`` and
        listed even if a later one fails or Ctrl-C stops the command.  Out of memory climbs
        the ladder of repl/memory.py (the image that failed is made again, finished ones are
        not).  Raises OutputError (folder unusable, before any work), SaveFailed, OutOfMemory
        (every rung failed), ModelUnavailable; CommandInterrupted (a KeyboardInterrupt) after
        Ctrl-C stopped it and its finished images are saved.  --dry_run: only the estimate and
        the command."""
        self.stopped_after = False
        if request.dry_run:
            forecasts.dry_run(self.generators(), request, self.say, self.store)
            return
        outdir = self.outdir_for(request)
        check_writable(outdir)  # before the model loads and before any image is made
        generator = self.generators()
        job = CommandJob(self, request, outdir, generator, on_saved)
        model = getattr(generator, "model", None)
        device = getattr(model, "device", None)
        cuda = reset_cuda_peak(device)
        ladder = MemoryLadder(model, lambda: run_size(request, model, job.init), self.say)
        out_of_memory = False
        with job.stop.installed():  # Ctrl-C: "stopping after this step...", see interrupt.py
            try:
                ladder.run(job.generate, lambda: len(job.done))
            except KeyboardInterrupt:
                job.interrupted = True
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                out_of_memory = True  # raised below, once this frame's tensors are gone
            finally:
                with job.stop.writing():
                    job.finish(cuda)
        if job.interrupted:  # said and saved; the caller decides whether anything goes on
            raise CommandInterrupted
        # Ctrl-C came, but the command finished first (its images came from Ray workers, or the
        # last one was being written): it is complete; a file or pipe stops after it.
        self.stopped_after = job.stop.requested
        if out_of_memory:
            size = ladder.size  # before the job (and its init image) goes
            del job
            free_memory(device)
            tried = f"; retried {ladder.tried_text}" if ladder.tried else ""
            raise OutOfMemory(f"out of memory at {size}; try --fit or a smaller -W/-H "
                              f"(the memory it held is free again{tried})")
