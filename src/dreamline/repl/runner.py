"""Run one parsed request: load the model once, generate, save each image as it finishes,
print the ``Outputs:`` lines and append the logs.

Images are written the moment the generator yields them, so an interrupt or a failure half-way
through a command keeps (and lists) the finished ones.  torch and the generator core are
imported only when the first image is generated.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from dreamline.errors import DreamlineError
from dreamline.models.registry import DEFAULT_REGISTRY
from dreamline.repl.settings import ModelDefault, Settings
from dreamline.request import Request

Say = Callable[[str], None]
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = "demo"
PROMPT_DIR_MAX = 80


def default_models_file() -> Path:
    """configs/models.yaml in the working directory, else the one beside the project sources."""
    here = Path.cwd() / DEFAULT_REGISTRY
    if here.is_file():
        return here
    return PROJECT_ROOT / DEFAULT_REGISTRY


def demo_registry() -> Any:
    """The registry used when there is no models file: just the built-in demo model, with the
    same settings as its configs/models.yaml entry (32x32 is what it was trained at)."""
    from dreamline.models.registry import DATA_DIR, ModelEntry, ModelRegistry

    # cfg_scale 4, as in configs/models.yaml: measured on this model (data/demo/MODEL_CARD.md),
    # prompt adherence top-5 is 78% at -C 4 against 32.5% at SD's usual 7.5.
    entry = ModelEntry(DEMO_MODEL, DATA_DIR / "demo", description="small built-in demo model",
                       width=32, height=32, cfg_scale=4.0, default=True)
    return ModelRegistry([entry])


def prompt_dir_name(prompt: str) -> str:
    """--prompt_as_dir: a directory name from the prompt's words ('a red fox' -> 'a_red_fox')."""
    words = re.sub(r"[^\w\s-]", "", prompt).split()
    name = "_".join(words)[:PROMPT_DIR_MAX].strip("_-")
    return name if name else "no_prompt"


class Progress:
    """One self-overwriting line of steps done/total and speed, only on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = getattr(stream, "isatty", lambda: False)()
        self.steps = 0
        self.started = time.perf_counter()
        self._drawn = False

    def step(self, done: int, total: int) -> None:
        self.steps += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        speed = self.steps / elapsed if elapsed > 0 else 0.0
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r  [{bar}] {done}/{total} steps  {speed:.2f} it/s ")
        self.stream.flush()
        self._drawn = True

    def end_line(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class Runner:
    """Owns the loaded model and the generator; runs requests for the session."""

    def __init__(self, settings: Settings, *, say: Say = print,
                 progress_stream: TextIO | None = None) -> None:
        self.settings = settings
        self.say = say
        self.progress_stream = progress_stream if progress_stream is not None else sys.stderr
        self._registry: Any = None
        self._generator: Any = None
        self._loras: Any = None  # models.lora.LoraLibrary, made on the first load
        self._model: Any = None
        self._device: Any = None
        self._dtype: Any = None
        self.wanted_model = settings.model  # None: the registry's default

    # ---- labels for the toolbar ----------------------------------------------------------
    @property
    def model_label(self) -> str:
        if self._model is not None:
            return f"{self._model.name} [{self._model.short_hash}]"
        if self.wanted_model is not None:
            return f"{self.wanted_model} (not loaded yet)"
        return "default (not loaded yet)"

    @property
    def device_label(self) -> str:
        if self._device is None:
            return self.settings.device or "auto"
        from dreamline.devices import dtype_name

        return f"{self._device} {dtype_name(self._dtype)}"

    # ---- models --------------------------------------------------------------------------
    @property
    def models_file(self) -> Path | None:
        """--config, else configs/models.yaml if there is one; None: only the demo model."""
        if self.settings.config is not None:
            return self.settings.config
        found = default_models_file()
        return found if found.is_file() else None

    def registry(self) -> Any:
        if self._registry is None:
            from dreamline.models.registry import ModelRegistry

            path = self.models_file
            self._registry = ModelRegistry.load(path) if path is not None else demo_registry()
        return self._registry

    def model_names(self) -> list[str]:
        """Names for completion; empty (not an error) when the models file cannot be read."""
        try:
            return list(self.registry().names)
        except DreamlineError:
            return []

    def model_default(self) -> ModelDefault | None:
        """The current model's own default -C from its registry entry, known without loading
        it (lines are parsed before the lazy load).  None when the entry sets none, the model is
        a path no entry names, or the models file cannot be read (loading will say why)."""
        try:
            registry = self.registry()
        except DreamlineError:
            return None
        # wanted_model, not the loaded model's name: a path's name is its stem, which may
        # collide with an entry's name; !switch sets wanted_model only once the load worked.
        entry = registry.find(self.wanted_model)
        if entry is None or entry.cfg_scale is None:
            return None
        where = f"its {registry.path.name} entry" if registry.path is not None \
            else "its built-in entry"
        return ModelDefault(entry.name, entry.cfg_scale, where)

    def describe_models(self) -> list[str]:
        registry = self.registry()
        loaded = self._model.name if self._model is not None else None
        where = self.models_file if self.models_file is not None else "the built-in list"
        lines = [f"models in {where}:"]
        for name in registry.names:
            entry = registry.entry(name)
            marks = [mark for mark, on in (("default", name == registry.default_name),
                                           ("loaded", name == loaded)) if on]
            shown = f" ({', '.join(marks)})" if marks else ""
            about = entry.description or str(entry.path)
            lines.append(f"  {name}{shown}: {about}")
        return lines

    def switch_model(self, name: str) -> None:
        """Load ``name`` now; on failure the current model stays (the error says why)."""
        self._load(name)
        self.wanted_model = name

    def _choose_device(self) -> None:
        if self._device is not None:
            return
        from dreamline.devices import choose_device, choose_dtype, describe

        device = choose_device(self.settings.device)
        dtype = choose_dtype(device, self.settings.precision)
        self._device, self._dtype = device, dtype
        self.say(f">> {describe(device, dtype)}")

    def _load(self, name: str | None) -> None:
        from dreamline.core import Generator
        from dreamline.models.loader import load_model

        self._choose_device()
        registry = self.registry()
        model = load_model(name, registry=registry, device=self._device, dtype=self._dtype,
                           report=self._report_line, vae=self.settings.vae)
        self._model = model
        if self._loras is None:  # one library for the session: each LoRA file is read once
            from dreamline.models.hashing import HashCache
            from dreamline.models.lora import LoraLibrary, lora_folder

            self._loras = LoraLibrary(lora_folder(self.models_file),
                                      hashes=HashCache(registry.hash_cache_path))
        self._generator = Generator(model, report=self._report_line, loras=self._loras)
        if model.name == DEMO_MODEL:
            self.say(">> this is the small built-in demo model; for real pictures point dreamline "
                     "at a Stable Diffusion 1.x checkpoint with --model PATH or an entry in "
                     "configs/models.yaml (--config FILE)")

    def _report_line(self, text: str) -> None:
        self.say(f">> {text}")

    def generator(self) -> Any:
        if self._generator is None:
            self._load(self.wanted_model)
        return self._generator

    # ---- one request ---------------------------------------------------------------------
    def outdir_for(self, request: Request) -> Path:
        base = Path(request.outdir) if request.outdir is not None else self.settings.outdir
        if self.settings.prompt_as_dir:
            return base / prompt_dir_name(request.prompt)
        return base

    def run(self, request: Request, on_saved: Callable[[Path, int], None]) -> None:
        """Generate ``request``; every finished image is saved, reported to ``on_saved`` and
        listed even if a later one fails or Ctrl-C stops the command."""
        from dreamline import metadata, outputs
        from dreamline.format import format_command

        generator = self.generator()
        outdir = self.outdir_for(request)
        directory = outputs.OutputDir(outdir)
        directory.ensure()  # an unusable -o fails before any work
        prefix: int | None = None  # taken with the first image: a failed command uses no number
        saved: list[tuple[Path, str]] = []  # (file, command) in the order written
        done: list[tuple[Any, dict[str, Any]]] = []  # (GeneratedImage, its sd-metadata)
        steps = _StepSaver(generator, request.save_intermediates, request.decode_intermediates)
        progress = Progress(self.progress_stream)
        cuda = _reset_cuda_peak(self._device)
        started = time.perf_counter()
        interrupted = False

        def on_step(step: Any) -> None:
            progress.step(step.index + 1, step.total)
            steps.maybe_keep(step)

        try:
            init = None  # the core takes pixels: the init image is read and hashed here
            if request.is_img2img:
                from dreamline.init_input import prepare_init

                model = generator.model
                init = prepare_init(request, default_size=(model.default_width,
                                                           model.default_height),
                                    multiple=model.size_multiple, report=self._report_line)
            for result in generator.iter_generate(request, init=init, on_step=on_step,
                                                   on_start=steps.start):
                progress.end_line()
                if prefix is None:
                    prefix = directory.reserve_prefix()
                # the image's own command: -g is about the whole command, not this image
                command = format_command(dataclasses.replace(result.request, grid=False))
                sd_meta = metadata.sd_metadata(result)
                path = outputs.save_image(outdir, prefix, result.seed, result.image, command,
                                          sd_meta, metadata.a1111_parameters(result))
                saved.append((path, command))
                done.append((result, sd_meta))
                on_saved(path, result.seed)
                steps.save(outdir, prefix, result.seed)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.end_line()
            seconds = time.perf_counter() - started
            if prefix is not None:
                if request.grid and len(done) > 1:
                    saved.append(self._save_grid(request, outdir, prefix, done))
                self._report(prefix, outdir, saved, len(done), seconds, progress.steps, cuda)
        if interrupted:
            self.say(f">> interrupted: generation stopped; kept {len(done)} finished image(s)")

    @staticmethod
    def _save_grid(request: Request, outdir: Path, prefix: int,
                   done: list[tuple[Any, dict[str, Any]]]) -> tuple[Path, str]:
        """-g: one grid of the command's images; its command (the line's own request with the
        seed that ran) rebuilds the whole grid."""
        from dreamline import metadata, outputs

        first = done[0][0]
        base_seed = first.request.seed  # image 0 (and every -v image) keeps the command's seed
        command = metadata.grid_command(request, base_seed, len(done))
        grid = outputs.make_grid([result.image for result, _ in done])
        path = outputs.save_grid(outdir, prefix, first.seed, grid, command,
                                 metadata.grid_metadata([meta for _, meta in done]))
        return path, command

    def _report(self, prefix: int, outdir: Path, saved: list[tuple[Path, str]], count: int,
                seconds: float, steps: int, cuda: bool) -> None:
        from dreamline import outputs

        for line in outputs.format_output_lines(prefix, saved):
            self.say(line)
        if saved:
            outputs.append_logs(outdir, outputs.output_entries(prefix, saved))
        speed = f", {steps / seconds:.2f} steps/s" if seconds > 0 and steps else ""
        memory = ""
        if cuda:
            import torch

            memory = f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        self.say(f">> {count} image(s) in {seconds:.2f}s{speed}{memory}")


def _reset_cuda_peak(device: Any) -> bool:
    if device is None or getattr(device, "type", "") != "cuda":
        return False
    import torch

    torch.cuda.reset_peak_memory_stats(device)
    return True


class _StepSaver:
    """--save_intermediates N: keep pictures of the current image's start, every N-th step and
    its last step, then write them with a side-by-side strip when the image is done.

    Pictures are the model's cheap linear previews (blown up to the image size, so the strip's
    cells line up), or full VAE decodes with --decode_intermediates, which cost a decode each.
    """

    def __init__(self, generator: Any, every: int | None, decode: bool = False) -> None:
        self.generator = generator
        self.every = every
        self.decode = decode
        self.kept: list[tuple[int, str, Any]] = []  # (steps done, label, picture)

    def _picture(self, latents: Any) -> Any:
        return self.generator.decode(latents) if self.decode else self.generator.preview(latents)

    def start(self, info: Any) -> None:
        """The latents the sampler starts from: "the initial image that SD sees"."""
        if self.every is None:
            return
        label = f"start (step {info.start_step} of {info.steps})"
        self.kept = [(0, label, self._picture(info.latents))]

    def maybe_keep(self, step: Any) -> None:
        if self.every is None:
            return
        done = step.index + 1
        if done % self.every == 0 or done == step.total:
            self.kept.append((done, f"step {done}", self._picture(step.latents)))

    def save(self, outdir: Path, prefix: int, seed: int) -> None:
        """Write ``step-NNNN.png`` per kept picture (``step-0000`` is the start) and strip.png."""
        if not self.kept:
            return
        from dreamline import outputs

        directory = outputs.intermediates_dir(outdir, prefix, seed)
        for done, _, image in self.kept:
            outputs.save_step(directory, done, image)
        strip = outputs.make_strip([image for _, _, image in self.kept],
                                   [label for _, label, _ in self.kept])
        outputs.write_png(directory / "strip.png", strip)
        self.kept = []
