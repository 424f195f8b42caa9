"""Run one parsed request to files: generate, save each image as it finishes, print the
``Outputs:`` lines and append the logs.

Images are written the moment the generator yields them, so an interrupt or a failure half-way
through a command keeps (and lists) the finished ones.  The output folder is checked before
any work; a save that fails (a full disk) stops the command with one line naming the image and
how many were kept, and the logs list exactly the files written.  Out of memory is one line
with the size and what to try, and the memory the request held is given back.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from dreamline.errors import DreamlineError, ModelError
from dreamline.repl import forecast as forecasts
from dreamline.repl.context import ModelManager, ModelUnavailable, OnSaved
from dreamline.repl.inputs import prepare_line_init, run_size
from dreamline.repl.interrupt import StopRequest
from dreamline.repl.memory import MemoryLadder, free_memory, is_out_of_memory
from dreamline.repl.progress import Progress
from dreamline.repl.settings import Settings
from dreamline.repl.steps import StepSaver
from dreamline.request import Request

Say = Callable[[str], None]


class OutOfMemory(DreamlineError):
    """The request did not fit in memory; the message names the size and what to try."""


class SaveFailed(DreamlineError):
    """An image could not be written; the message names it and how many were kept."""


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


class ModelGenerators:
    """The Generator of the manager's current model, made once per loaded model.

    The session's parts are made once, at the first use: the textual-inversion embeddings
    (``embeddings/`` beside ``models_file``, then each ``embedding_paths`` entry) and the LoRA
    library (``loras/`` beside ``models_file``; each file read once while unchanged).
    ``compile_unet``: --compile (each Generator runs its UNet through torch.compile).
    """

    def __init__(self, models: ModelManager, *, say: Say = print,
                 models_file: Path | None = None, embedding_paths: tuple[Path, ...] = (),
                 compile_unet: bool = False) -> None:
        self.models = models
        self.say = say
        self.models_file = models_file
        self.embedding_paths = embedding_paths
        self.compile_unet = compile_unet
        self._parts: tuple[Any, Any] | None = None  # (EmbeddingSet, LoraLibrary)
        self._model: Any = None
        self._generator: Any = None

    def parts(self) -> tuple[Any, Any]:
        """(EmbeddingSet, LoraLibrary) of the session; a bad embedding file named directly
        raises EmbeddingError (one line)."""
        if self._parts is None:
            from dreamline.models.embeddings import session_embeddings
            from dreamline.models.hashing import CACHE_FILE_NAME, HashCache
            from dreamline.models.lora import LoraLibrary, lora_folder
            from dreamline.models.registry import user_cache_dir

            embeddings = session_embeddings(self.embedding_paths, self.models_file,
                                            report=lambda text: self.say(f">> {text}"))
            loras = LoraLibrary(lora_folder(self.models_file),
                                hashes=HashCache(user_cache_dir() / CACHE_FILE_NAME))
            self._parts = (embeddings, loras)
        return self._parts

    def __call__(self) -> Any:
        try:
            model = self.models.current()
        except ModelError as exc:
            raise ModelUnavailable(exc) from None
        if model is not self._model:
            from dreamline.core import Generator

            embeddings, loras = self.parts()
            self._generator = None  # drop the old one before building the new
            self._generator = Generator(model, report=lambda text: self.say(f">> {text}"),
                                        embeddings=embeddings, loras=loras,
                                        compile_unet=self.compile_unet)
            self._model = model
        return self._generator


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

        base = Path(request.outdir) if request.outdir is not None else self.settings.outdir
        if self.settings.prompt_as_dir:
            return base / outputs.safe_dir_name(request.prompt)
        return base

    def run(self, request: Request, on_saved: OnSaved) -> None:
        """Generate ``request``; every finished image is saved, reported to ``on_saved`` and
        listed even if a later one fails or Ctrl-C stops the command.  Out of memory climbs
        the ladder of repl/memory.py (the image that failed is made again, finished ones are
        not).  Raises OutputError (folder unusable, before any work), SaveFailed, OutOfMemory
        (every rung failed), ModelUnavailable.  --dry_run: only the estimate and command."""
        if request.dry_run:
            forecasts.dry_run(self.generators(), request, self.say, self.store)
            return
        outdir = self.outdir_for(request)
        check_writable(outdir)  # before the model loads and before any image is made
        generator = self.generators()
        job = _Job(self, request, outdir, generator, on_saved)
        model = getattr(generator, "model", None)
        device = getattr(model, "device", None)
        cuda = _reset_cuda_peak(device)
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
        if out_of_memory:
            size = ladder.size  # before the job (and its init image) goes
            del job
            free_memory(device)
            tried = f"; retried {ladder.tried_text}" if ladder.tried else ""
            raise OutOfMemory(f"out of memory at {size}; try --fit or a smaller -W/-H "
                              f"(the memory it held is free again{tried})")


class _Job:
    """One command's images: save as they come, then grid, Outputs lines, logs and summary."""

    def __init__(self, runner: Runner, request: Request, outdir: Path, generator: Any,
                 on_saved: OnSaved) -> None:
        self.runner = runner
        self.request = request
        self.outdir = outdir
        self.generator = generator
        self.on_saved = on_saved
        self.prefix: int | None = None  # taken with the first image: a failure uses no number
        self.saved: list[tuple[Path, str]] = []  # (file, command) in the order written
        self.done: list[tuple[Any, dict[str, Any]]] = []  # (GeneratedImage, its sd-metadata)
        self.steps = StepSaver(generator, request.save_intermediates,
                               request.decode_intermediates)
        self.progress = Progress(runner.progress_stream, request.iterations,
                                 enabled=runner.progress)
        self.interrupted = False
        self.forecast: forecasts.Measure = forecasts.NO_FORECAST  # set once the init is read
        self.init: Any = None  # the prepared init image (None: txt2img), read once
        self.init_ready = False
        self.stop = StopRequest(lambda text: runner.say(f">> {text}"))

    def _on_start(self, info: Any) -> None:
        self.stop.check()
        self.forecast.start_image()
        self.progress.start_image()
        self.steps.start(info)

    def _on_step(self, step: Any) -> None:
        self.forecast.step()
        self.progress.step(step.index + 1, step.total)
        self.steps.maybe_keep(step)
        if step.index + 1 < step.total:  # after the last step the image is finished and kept
            self.stop.check()

    def _prepare_init(self) -> Any:
        """The core takes pixels: the init image is read, fitted and hashed here (None: txt2img)."""
        if not self.request.is_img2img:
            return None
        return prepare_line_init(self.request, self.generator.model, self.runner.say)

    def generate(self, first: int = 0) -> None:
        """Make and save the images from index ``first`` on (a retry after out of memory)."""
        from dreamline import outputs

        if not self.init_ready:  # once, even when the first image is retried
            self.init, self.init_ready = self._prepare_init(), True
            self.forecast = forecasts.make(self.generator, self.request, self.init,
                                           self.runner.store)
            with self.stop.asking():  # Ctrl-C at the question is a no
                if not self.forecast.announce(self.runner.say, self.runner.confirm):
                    return
        request, more = self.request, {}
        if first:  # the images left keep the seeds they would have had (image 0's is the base)
            request, more = dataclasses.replace(request, seed=self.done[0][0].request.seed), \
                {"first": first}
        self.progress.close()
        self.progress.image = first
        for result in self.generator.iter_generate(request, init=self.init,
                                                   on_step=self._on_step,
                                                   on_start=self._on_start, **more):
            self.forecast.finish_image()
            self.progress.close()
            number = len(self.done) + 1
            try:
                if self.prefix is None:
                    self.prefix = outputs.OutputDir(self.outdir).reserve_prefix()
                self._save(self.prefix, result)
            except DreamlineError as exc:
                raise SaveFailed(f"image {number}/{self.request.iterations} (seed {result.seed}) "
                                 f"was not written: {exc}; kept {len(self.done)} image(s), "
                                 f"stopped the command") from None
            try:
                folder = self.steps.save(self.outdir, self.prefix, result.seed)
            except DreamlineError as exc:
                raise SaveFailed(f"the intermediate steps of image {number} were not written: "
                                 f"{exc}; kept {len(self.done)} image(s), stopped the "
                                 f"command") from None
            if folder is not None:
                self.runner.say(f">> intermediate steps of image {number} saved in {folder}")

    def _save(self, prefix: int, result: Any) -> None:
        from dreamline import outputs
        from dreamline.format import format_command
        from dreamline.pngmeta import a1111, invokeai

        # the image's own command: -g is about the whole command, not this image
        command = format_command(dataclasses.replace(result.request, grid=False))
        sd_meta = invokeai.sd_metadata(result)
        with self.stop.writing():
            path = outputs.save_image(self.outdir, prefix, result.seed, result.image, command,
                                      sd_meta, a1111.a1111_parameters(result),
                                      tag=self.runner.name_tag(self.request))
        self.saved.append((path, command))
        self.done.append((result, sd_meta))
        self.on_saved(path, result.seed)

    def finish(self, cuda: bool) -> None:
        """Grid, Outputs lines, logs and the summary; a log that cannot be written is said in
        its own line and never hides the command's own error."""
        from dreamline import outputs

        self.progress.close()
        self.forecast.close()
        say = self.runner.say
        if self.prefix is not None:
            if self.request.grid and len(self.done) > 1:
                try:
                    self.saved.append(self._save_grid(self.prefix))
                except DreamlineError as exc:
                    say(f">> the grid was not written: {exc}")
            for line in outputs.format_output_lines(self.prefix, self.saved):
                say(line)
            try:
                outputs.append_logs(self.outdir, outputs.output_entries(self.prefix, self.saved))
            except DreamlineError as exc:
                say(f">> the {len(self.saved)} file(s) above are not in the logs: {exc}")
            self._summary(cuda)
        if self.interrupted:
            say(f">> interrupted: generation stopped; kept {len(self.done)} finished image(s)")

    def _summary(self, cuda: bool) -> None:
        seconds, steps = self.progress.seconds, self.progress.steps
        speed = f", {steps / seconds:.2f} steps/s" if seconds > 0 and steps else ""
        memory = ""
        if cuda:
            import torch

            memory = f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        self.runner.say(f">> {len(self.done)} image(s) in {seconds:.2f}s{speed}{memory}")

    def _save_grid(self, prefix: int) -> tuple[Path, str]:
        """-g: one grid of the command's images; its command (the line's own request with the
        seed that ran) rebuilds the whole grid."""
        from dreamline import outputs
        from dreamline.pngmeta import a1111, invokeai

        first = self.done[0][0]
        base_seed = first.request.seed  # image 0 (and every -v image) keeps the command's seed
        command = invokeai.grid_command(self.request, base_seed, len(self.done))
        grid = outputs.make_grid([result.image for result, _ in self.done])
        path = outputs.save_grid(self.outdir, prefix, first.seed, grid, command,
                                 invokeai.grid_metadata([meta for _, meta in self.done]),
                                 a1111.grid_parameters(first))
        return path, command


def _reset_cuda_peak(device: Any) -> bool:
    if getattr(device, "type", "") != "cuda":
        return False
    import torch

    torch.cuda.reset_peak_memory_stats(device)
    return True
