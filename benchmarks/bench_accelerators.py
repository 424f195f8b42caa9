"""The opt-in accelerators against the plain run: speed ratio and mean pixel difference.

    .venv/bin/python benchmarks/bench_accelerators.py --threads 1
    .venv/bin/python benchmarks/bench_accelerators.py --model sd15-random --size 256 --steps 8 \\
        --repeats 1 --threads 1
    .venv/bin/python benchmarks/bench_accelerators.py --unet-only --model sd15-random \\
        --sizes 256 512 --contenders plain tome=0.5 --threads 1

Every contender is one request, run interleaved with the plain one in this process, same seed
and init image.  A contender is ``plain`` or ``field=value[,field=value]`` with Request fields
(``deepcache=3``, ``tome=0.5``, ``sampler=k_dpmpp_2m,steps=10``).  ``--unet-only`` times one
guided UNet call (batch of two) per size instead of whole images: where token merging starts to
pay.  Pixel differences are in 0-255 units against the plain image (a fewer-step sampler's image
differs by design: its figure says how far, not how wrong).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib
import numpy as np
import torch

from dreamline.core import Generator, steps_to_run
from dreamline.core.accelerators import accelerated_unet
from dreamline.init_input import prepare_init
from dreamline.request import Request

DEFAULT_CONTENDERS = ["plain", "deepcache=2", "deepcache=3", "deepcache=5", "tome=0.3",
                      "tome=0.5", "deepcache=3,tome=0.5", "sampler=k_dpmpp_2m,steps=HALF"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny",
                        help="tiny | sd15-random | a models.yaml name | a path (default tiny)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mode", choices=("img2img", "txt2img"), default="img2img")
    parser.add_argument("--contenders", nargs="+", default=DEFAULT_CONTENDERS,
                        help="plain, or field=value[,field=value]; steps=HALF is half of --steps")
    parser.add_argument("--unet-only", action="store_true",
                        help="time one guided UNet call per --sizes instead of whole images")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    benchlib.add_run_options(parser, repeats=3)
    return parser.parse_args(argv)


def changes_of(spec: str, steps: int) -> dict[str, Any]:
    """'deepcache=3,tome=0.5' -> {'deepcache': 3, 'tome': 0.5}; 'plain' -> {}."""
    if spec == "plain":
        return {}
    out: dict[str, Any] = {}
    for part in spec.split(","):
        key, _, text = part.partition("=")
        if key == "sampler":
            out[key] = text
        elif text == "HALF":
            out[key] = max(1, steps // 2)
        else:
            out[key] = float(text) if "." in text else int(text)
    return out


def mean_difference(a: Any, b: Any) -> float:
    left = np.asarray(a.convert("RGB"), dtype=np.float64)
    right = np.asarray(b.convert("RGB"), dtype=np.float64)
    return float(np.abs(left - right).mean())


def images(args: argparse.Namespace, model: Any, device: torch.device) -> None:
    size = args.size or model.default_width
    timer = benchlib.attach_timer(model.unet, device)  # counts full UNet calls only
    generator = Generator(model, report=benchlib.quiet)
    img2img = args.mode == "img2img"
    with tempfile.TemporaryDirectory() as tmp:
        init = str(benchlib.init_image_file(Path(tmp), size)) if img2img else None

        def run(changes: dict[str, Any]) -> benchlib.Sample:
            base = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=benchlib.SEED,
                           init_img=init, strength=args.strength,
                           width=None if img2img else size, height=None if img2img else size)
            request = base.with_changes(**changes)
            steps_run = (steps_to_run(request.strength, request.steps) if img2img
                         else request.steps)
            prepared = prepare_init(request, default_size=(size, size),
                                    multiple=model.size_multiple, report=benchlib.quiet)
            return benchlib.timed(lambda: generator.generate(request, init=prepared)[0].image,
                                  timer, device, steps_run)

        print(f"\n{args.mode} {size}x{size}, -s {args.steps}"
              + (f" -f {args.strength}" if img2img else "")
              + f", {args.repeats} interleaved rounds after {args.warmup} warm-up", flush=True)
        series = benchlib.interleaved(
            [(spec, lambda s=spec: run(changes_of(s, args.steps))) for spec in args.contenders],
            args.repeats, args.warmup)
    plain = series[0]
    base = statistics.median(plain.values(lambda s: s.seconds))
    print(f"\n  {'contender':<32}{'s/image med':>12}{'min':>9}{'steps':>6}{'full UNet':>10}"
          f"{'speed-up':>9}{'mean |dpx|':>11}{'max':>5}")
    for item in series:
        seconds = item.values(lambda s: s.seconds)
        first = item.samples[0]
        diff = mean_difference(first.image, plain.samples[0].image)
        biggest = benchlib.max_pixel_difference(first.image, plain.samples[0].image)
        print(f"  {item.name:<32}{statistics.median(seconds):>12.3f}{min(seconds):>9.3f}"
              f"{first.steps_run:>6}{first.unet_calls:>10}{base / statistics.median(seconds):>9.2f}"
              f"{diff:>11.2f}{biggest:>5}")


def unet_calls(args: argparse.Namespace, model: Any, device: torch.device) -> None:
    """One guided UNet call (batch 2, a 77-token context) per size and contender."""
    width = model.text_encoder.config.hidden_size
    print(f"\none UNet call, batch 2 (CFG), {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up")
    print(f"  {'size':>6}{'tokens':>8}" + "".join(f"{spec:>16}" for spec in args.contenders)
          + f"{'speed-up':>10}")
    for size in args.sizes:
        side = size // model.vae_scale_factor
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, model.unet.config.in_channels, side, side, generator=gen)
        context = torch.randn(2, 77, width, generator=gen)
        x, context = x.to(device, model.dtype), context.to(device, model.dtype)
        def call(spec: str, x: torch.Tensor = x, context: torch.Tensor = context
                 ) -> benchlib.Sample:
            t = torch.tensor(500.0, device=device)
            request = Request(**changes_of(spec, args.steps))
            with torch.inference_mode(), accelerated_unet(model.unet, request, 0) as unet:
                started = time.perf_counter()
                unet(x, t, encoder_hidden_states=context, return_dict=False)
                seconds = time.perf_counter() - started
            return benchlib.Sample(seconds, None, None, 1, 1, benchlib.Memory())

        series = benchlib.interleaved([(spec, lambda s=spec: call(s)) for spec in args.contenders],
                                      args.repeats, args.warmup)
        medians = [statistics.median(item.values(lambda s: s.seconds)) for item in series]
        print(f"  {size:>6}{side * side:>8}" + "".join(f"{m:>16.3f}" for m in medians)
              + f"{medians[0] / medians[-1]:>10.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device, dtype = benchlib.start(args.device, args.precision, args.threads)
    model = benchlib.build_model(args.model, device, dtype)
    if args.unet_only:
        unet_calls(args, model, device)
    else:
        images(args, model, device)
    print(benchlib.load_line("\nload after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
