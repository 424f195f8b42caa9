"""Seconds per image for each dreamline sampler at the same -s, interleaved in one process.

    .venv/bin/python benchmarks/bench_samplers.py --threads 1
    .venv/bin/python benchmarks/bench_samplers.py --mode txt2img --steps 30

-s counts sampling steps, not network calls: Heun and DPM2 (k_heun, k_dpm_2, k_dpm_2_a) are
second-order and call the UNet about twice per step, so at the same -s they cost about twice as
much.  The "UNet calls" column shows it; compare s/UNet call to see the per-call cost is equal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import benchlib

from dreamline.core import SCHEDULERS, Generator, steps_to_run
from dreamline.init_input import prepare_init
from dreamline.request import Request


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny",
                        help="tiny | sd15-random | a models.yaml name | a path (default tiny)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--samplers", nargs="+", default=list(SCHEDULERS),
                        help=f"default: all ({' '.join(SCHEDULERS)})")
    parser.add_argument("--mode", choices=("img2img", "txt2img"), default="img2img")
    benchlib.add_run_options(parser, repeats=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device, dtype = benchlib.start(args.device, args.precision, args.threads)
    model = benchlib.build_model(args.model, device, dtype)
    size = args.size or model.default_width
    timer = benchlib.attach_timer(model.unet, device)
    generator = Generator(model, report=benchlib.quiet)
    img2img = args.mode == "img2img"
    steps_run = steps_to_run(args.strength, args.steps) if img2img else args.steps
    with tempfile.TemporaryDirectory() as tmp:
        init = str(benchlib.init_image_file(Path(tmp), size)) if img2img else None

        def run(sampler: str) -> benchlib.Sample:
            request = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=benchlib.SEED,
                              sampler=sampler, init_img=init, strength=args.strength,
                              width=None if img2img else size, height=None if img2img else size)
            prepared = prepare_init(request, default_size=(model.default_width,
                                                           model.default_height),
                                    multiple=model.size_multiple, report=benchlib.quiet)
            return benchlib.timed(lambda: generator.generate(request, init=prepared)[0].image,
                                  timer, device, steps_run)

        print(f"\n{args.mode} {size}x{size}, -s {args.steps}"
              + (f" -f {args.strength} ({steps_run} sampling steps)" if img2img else "")
              + f", {args.repeats} interleaved rounds after {args.warmup} warm-up", flush=True)
        series = benchlib.interleaved([(name, lambda name=name: run(name))
                                       for name in args.samplers], args.repeats, args.warmup)
    base = statistics.median(series[0].values(lambda s: s.seconds))
    print(f"\n  {'sampler':<11}{'s/image med':>12}{'min':>9}{'UNet calls':>11}"
          f"{'s/UNet call':>12}{'vs ' + series[0].name:>12}")
    for item in series:
        seconds = item.values(lambda s: s.seconds)
        per_call = item.values(lambda s: s.unet_call_seconds)
        print(f"  {item.name:<11}{statistics.median(seconds):>12.3f}{min(seconds):>9.3f}"
              f"{item.samples[0].unet_calls:>11}{statistics.median(per_call):>12.4f}"
              f"{statistics.median(seconds) / base:>12.2f}")
    print(benchlib.load_line("\nload after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
