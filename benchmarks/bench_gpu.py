"""dreamline against diffusers on one GPU (the helper benchmarks/gpu.sh runs; see there).

    bash benchmarks/gpu.sh          # CUDA: SD 1.5-size random fp16 weights, 512x512, 20 steps
    bash benchmarks/gpu.sh --cpu    # the tests' tiny model on the CPU, 64x64, 4 steps

For txt2img and img2img (``-f 0.75``), with the Euler sampler on both sides (diffusers' stock
LMS takes a different first img2img step from dreamline's k-diffusion one, so pixels would not
compare), it runs:

- ``dreamline``: its Generator with its defaults (float16 on CUDA, diffusers' default attention,
  which is torch's scaled_dot_product_attention; the VAE decodes in float32 when its config
  sets ``force_upcast``, as the shipped SD 1.5 config does);
- ``diffusers``: StableDiffusionPipeline / StableDiffusionImg2ImgPipeline on the same UNet and
  text encoder (its own copy of the VAE, which it decodes in float16);
- ``diffusers+compile``: the same with diffusers' documented speed-ups: a channels_last copy of
  the UNet under ``torch.compile(mode="reduce-overhead", fullgraph=True)``; its compile time
  is reported on its own line (not in the timings).

Each contender runs interleaved with the others after a warm-up round; the table gives the
median seconds per image, denoising iterations per second (between the first and the last step's
end, so text encoding and VAE work are left out), the peak memory of one image
(torch.cuda.max_memory_allocated on CUDA, the process's peak RSS on the CPU), and the pixel
agreement with diffusers' eager image of the same seed (max and mean absolute difference, 0-255).
Nothing is downloaded: the weights are random, built from the configs in src/dreamline/data.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
import numpy as np
import torch
from PIL import Image

from dreamline.devices import attention_kind
from dreamline.models.types import LoadedModel
from dreamline.request import Request

TABLE_NAME = "gpu-bench.md"
CONTENDERS = ("dreamline", "diffusers", "diffusers+compile")
CPU = dict(device="cpu", precision="float32", model="tiny", size=64, steps=4, repeats=1)
GPU = dict(device="cuda", precision="float16", model="sd15-random", size=512, steps=20, repeats=3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true",
                        help="the tiny model on the CPU, 64x64, 4 steps, 1 round (for the test)")
    parser.add_argument("--device")
    parser.add_argument("--precision")
    parser.add_argument("--model", help="tiny | sd15-random | a models.yaml name | a path")
    parser.add_argument("--size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--strength", type=float, default=0.75)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="run diffusers+compile (default: on CUDA only)")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds: torch.compile is skipped when less than 240 s of it "
                             "are left (default 450, so the whole run stays under 8 minutes)")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT") or None,
                        help=f"a folder for {TABLE_NAME} (default: $OUT if set)")
    args = parser.parse_args(argv)
    for key, value in (CPU if args.cpu else GPU).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.compile is None:
        args.compile = not args.cpu
    return args


@dataclass
class Run:
    seconds: float
    its: float | None  # denoising iterations per second
    peak_mib: float | None
    growth_mib: float | None  # the peak minus what was allocated (RSS) just before the image
    image: Image.Image


@dataclass
class Row:
    mode: str
    name: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""


def timed(call: Callable[[Callable[[], None]], Image.Image], device: torch.device) -> Run:
    """One image; ``call(step_done)`` makes it and calls ``step_done`` after every step."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    stamps: list[float] = []

    def step_done() -> None:
        sync()
        stamps.append(time.perf_counter())

    resident = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    with benchlib.measure_memory(device) as memory:
        sync()
        started = time.perf_counter()
        image = call(step_done)
        sync()
        seconds = time.perf_counter() - started
    its = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
    if device.type == "cuda":
        peak = memory.cuda_peak_mib
        growth = None if peak is None or resident is None else peak - resident
    else:
        peak, growth = memory.peak_rss_mib, memory.extra_rss_mib
    return Run(seconds, its, peak, growth, image)


def pipeline(kind: type, model: LoadedModel, unet: Any, vae: Any) -> Any:
    from diffusers import EulerDiscreteScheduler

    pipe = kind(vae=vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=unet,
                scheduler=EulerDiscreteScheduler.from_config(model.scheduler_config),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def contenders(mode: str, model: LoadedModel, args: argparse.Namespace, init_path: Path,
               unets: dict[str, Any], vae: Any) -> dict[str, Callable[[Callable[[], None]],
                                                                     Image.Image]]:
    """name -> call(step_done) for one mode; the dreamline call prepares its init as the REPL
    does (read, fit, hash)."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    from dreamline.core import Generator
    from dreamline.init_input import prepare_init

    generator = Generator(model, report=benchlib.quiet)
    size, seed = args.size, benchlib.SEED
    request = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=seed, cfg_scale=args.cfg,
                      sampler="k_euler", width=size, height=size)
    init = None
    if mode == "img2img":
        request = request.with_changes(init_img=str(init_path), strength=args.strength,
                                       width=None, height=None)
        init = Image.open(init_path).convert("RGB")

    def ours(step_done: Callable[[], None]) -> Image.Image:
        prepared = prepare_init(request, default_size=(size, size),
                                multiple=model.size_multiple, report=benchlib.quiet)
        return generator.generate(request, init=prepared,
                                  on_step=lambda _step: step_done())[0].image

    def theirs(unet: Any) -> Callable[[Callable[[], None]], Image.Image]:
        kind = StableDiffusionImg2ImgPipeline if mode == "img2img" else StableDiffusionPipeline
        pipe = pipeline(kind, model, unet, vae)
        options: dict[str, Any] = (dict(image=init, strength=args.strength) if init is not None
                                   else dict(height=size, width=size))

        def call(step_done: Callable[[], None]) -> Image.Image:
            def on_step(_pipe: Any, _index: int, _t: Any, kwargs: dict[str, Any]) -> dict:
                step_done()
                return kwargs

            return pipe(benchlib.PROMPT, num_inference_steps=args.steps,
                        guidance_scale=args.cfg, callback_on_step_end=on_step,
                        generator=torch.Generator().manual_seed(seed), **options).images[0]

        return call

    calls = {"dreamline": ours}
    for name, unet in unets.items():
        calls[name] = theirs(unet)
    return calls


def compiled_unet(model: LoadedModel) -> Any:
    """diffusers' documented recipe: channels_last, then torch.compile(reduce-overhead,
    fullgraph) of the UNet (a copy, so the eager contenders keep theirs)."""
    unet = copy.deepcopy(model.unet).to(memory_format=torch.channels_last)
    return torch.compile(unet, mode="reduce-overhead", fullgraph=True)


def measure(mode: str, calls: dict[str, Callable[..., Image.Image]], device: torch.device,
            repeats: int) -> list[Row]:
    rows = {name: Row(mode, name) for name in calls}
    names = list(calls)
    for round_index in range(1 + repeats):  # round 0 warms up (and compiles)
        order = names if round_index % 2 else names[::-1]
        for name in order:
            started = time.perf_counter()
            run = timed(calls[name], device)
            if round_index == 0:
                if name == "diffusers+compile":
                    took = time.perf_counter() - started
                    rows[name].note = f"first call (compiling) {took:.1f} s"
                continue
            rows[name].runs.append(run)
        print(f"  {mode} round {round_index}/{repeats} done", flush=True)
    return list(rows.values())


def difference(a: Image.Image, b: Image.Image) -> tuple[int, float]:
    left = np.asarray(a.convert("RGB"), dtype=np.int16)
    right = np.asarray(b.convert("RGB"), dtype=np.int16)
    diff = np.abs(left - right)
    return int(diff.max()), float(diff.mean())


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def table(rows: list[Row], memory_label: str) -> list[str]:
    lines = [f"| mode | contender | s/image | it/s | ratio to diffusers (time) | "
             f"{memory_label} | growth MiB | max px diff | mean px diff | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    reference = {row.mode: row for row in rows if row.name == "diffusers"}
    for row in rows:
        base = reference.get(row.mode)
        if not row.runs:
            lines.append(f"| {row.mode} | {row.name} | - | - | - | - | - | - | - | {row.note} |")
            continue
        seconds = _median([run.seconds for run in row.runs])
        its = _median([run.its for run in row.runs])
        peak = _median([run.peak_mib for run in row.runs])
        growth = _median([run.growth_mib for run in row.runs])
        ratio = seconds / _median([run.seconds for run in base.runs]) if base and base.runs \
            and seconds else None
        max_diff, mean_diff = difference(row.runs[0].image, base.runs[0].image) \
            if base and base.runs else (None, None)
        lines.append("| " + " | ".join([
            row.mode, row.name, f"{seconds:.3f}", "-" if its is None else f"{its:.2f}",
            "-" if ratio is None else f"{ratio:.3f}", "-" if peak is None else f"{peak:.0f}",
            "-" if growth is None else f"{growth:.0f}",
            "-" if max_diff is None else str(max_diff),
            "-" if mean_diff is None else f"{mean_diff:.3f}", row.note]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begun = time.monotonic()
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        print(f"bench_gpu: this torch ({torch.__version__}) sees no CUDA GPU; use --cpu to run "
              f"it on the CPU", file=sys.stderr)
        return 2
    device, dtype = benchlib.start(args.device, args.precision, None)
    model = benchlib.build_model(args.model, device, dtype)
    print(f"model {args.model} ready in {time.monotonic() - begun:.1f} s; attention "
          f"{attention_kind(model.unet, model.vae)}", flush=True)
    vae = copy.deepcopy(model.vae)  # dreamline may widen its VAE's decoder; diffusers keeps its
    unets: dict[str, Any] = {"diffusers": model.unet}
    skipped = ""
    if not args.compile:
        skipped = "skipped (--cpu)" if args.cpu else "skipped (--no-compile)"
    elif time.monotonic() - begun > args.budget - 240:
        skipped = "skipped: the time budget was spent"
    else:
        unets["diffusers+compile"] = compiled_unet(model)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        init_path = benchlib.init_image_file(Path(tmp), args.size)
        for mode in ("txt2img", "img2img"):
            calls = contenders(mode, model, args, init_path, unets, vae)
            rows += measure(mode, calls, device, args.repeats)
            if skipped:
                rows.append(Row(mode, "diffusers+compile", note=skipped))
    steps = f"-s {args.steps} -C {args.cfg} -A k_euler, img2img -f {args.strength}"
    memory_label = "peak CUDA MiB" if device.type == "cuda" else "peak RSS MiB"
    lines = [f"{args.model} {args.size}x{args.size} on {benchlib.machine_lines(device, dtype)[-1]}"
             f", {steps}; median of {args.repeats} round(s) after 1 warm-up", "",
             *table(rows, memory_label), "",
             f"total {time.monotonic() - begun:.0f} s"]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / TABLE_NAME).write_text(text + "\n", encoding="utf-8")
        print(f"table written to {args.out / TABLE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
