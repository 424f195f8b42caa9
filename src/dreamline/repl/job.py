"""One command's images, as the runner makes them: each saved the moment it is finished (with
its intermediate steps), then the grid, the ``Outputs:`` lines, the logs and the summary.

A save that fails (a full disk) stops the command with one line naming the image and how many
were kept, and the logs list exactly the files written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from dreamline.errors import DreamlineError
from dreamline.repl import forecast as forecasts
from dreamline.repl.context import OnSaved
from dreamline.repl.inputs import prepare_line_init
from dreamline.repl.interrupt import StopRequest
from dreamline.repl.progress import Progress
from dreamline.repl.steps import StepSaver
from dreamline.request import Request


class SaveFailed(DreamlineError):
    """An image could not be written; the message names it and how many were kept."""


class JobOwner(Protocol):
    """What a job reads of its runner (repl/runner.py's Runner)."""

    say: Callable[[str], None]
    progress_stream: TextIO
    progress: bool | None  # None: a bar only on a terminal
    store: forecasts.ThroughputStore
    confirm: forecasts.Confirm | None

    def name_tag(self, request: Request) -> str | None: ...


class CommandJob:
    """One command's images: save as they come, then grid, Outputs lines, logs and summary."""

    def __init__(self, runner: JobOwner, request: Request, outdir: Path, generator: Any,
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


def reset_cuda_peak(device: Any) -> bool:
    """Start measuring the CUDA peak for this command; False where the device is not CUDA."""
    if getattr(device, "type", "") != "cuda":
        return False
    import torch

    torch.cuda.reset_peak_memory_stats(device)
    return True
