"""--save_intermediates N: keep pictures of one image's start, every N-th step and its last
step, then write them (and a side-by-side strip) when the image is done.

Pictures are the model's cheap linear previews (blown up to the image size, so the strip's
cells line up), or full VAE decodes with --decode_intermediates, which cost a decode each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class StepSaver:
    """Collects the pictures of the current image; ``save`` writes them and says where."""

    def __init__(self, generator: Any, every: int | None, decode: bool = False) -> None:
        self.generator = generator
        self.every = every
        self.decode = decode
        self.kept: list[tuple[int, str, Any]] = []  # (steps done, label, picture)
        self.offset = 0  # schedule steps skipped before the first one run (img2img)
        self.schedule: int | None = None  # the full schedule's steps (-s)

    def _picture(self, latents: Any) -> Any:
        return self.generator.decode(latents) if self.decode else self.generator.preview(latents)

    def start(self, info: Any) -> None:
        """The latents the sampler starts from: "the initial image that SD sees"."""
        if self.every is None:
            return
        self.offset, self.schedule = info.start_step, info.steps
        label = f"start (step {info.start_step} of {info.steps})"
        self.kept = [(0, label, self._picture(info.latents))]

    def maybe_keep(self, step: Any) -> None:
        if self.every is None:
            return
        done = step.index + 1
        if done % self.every == 0 or done == step.total:
            # numbered in the schedule, as the start is: img2img's first step run is 4 of 10
            of = f" of {self.schedule}" if self.schedule is not None else ""
            label = f"step {self.offset + done}{of}"
            self.kept.append((done, label, self._picture(step.latents)))

    def save(self, outdir: Path, prefix: int, seed: int) -> Path | None:
        """Write ``step-NNNN.png`` per kept picture (``step-0000`` is the start) and
        ``strip.png``; the folder written, or None when nothing was kept."""
        if not self.kept:
            return None
        from dreamline import outputs

        directory = outputs.intermediates_dir(outdir, prefix, seed)
        for done, _, image in self.kept:
            outputs.save_step(directory, done, image)
        strip = outputs.make_strip([image for _, _, image in self.kept],
                                   [label for _, label, _ in self.kept])
        outputs.write_png(directory / "strip.png", strip)
        self.kept = []
        return Path(directory)
