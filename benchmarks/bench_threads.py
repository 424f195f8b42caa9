"""1 versus 2 (or any) torch threads for one dreamline img2img, interleaved in one process.

    .venv/bin/python benchmarks/bench_threads.py
    .venv/bin/python benchmarks/bench_threads.py --threads 1 2 4 --repeats 7

Why: on an idle multi-core machine more intra-op threads help, but when other processes hold the
cores (shared CI runners, a training job), extra threads wait on each other and a small model can
get many times slower.  Switching torch.set_num_threads between runs of one process, round by
round, shows which side of that line the machine is on right now.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import benchlib
import torch

from dreamline.core import Generator, steps_to_run
from dreamline.init_input import prepare_init
from dreamline.request import Request


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny",
                        help="tiny | sd15-random | a models.yaml name | a path (default tiny)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts to compare (default 1 2)")
    benchlib.add_run_options(parser, repeats=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device, dtype = torch.device("cpu"), torch.float32
    for line in benchlib.machine_lines(device, dtype):
        print(line)
    print(benchlib.load_line("load before"), flush=True)
    model = benchlib.build_model(args.model, device, dtype)
    size = args.size or model.default_width
    timer = benchlib.attach_timer(model.unet, device)
    generator = Generator(model, report=benchlib.quiet)
    steps_run = steps_to_run(args.strength, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        request = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=benchlib.SEED,
                          sampler="k_lms", strength=args.strength,
                          init_img=str(benchlib.init_image_file(Path(tmp), size)))

        prepared = prepare_init(request, default_size=(model.default_width,
                                                       model.default_height),
                                multiple=model.size_multiple, report=benchlib.quiet)

        def run_with(threads: int) -> benchlib.Sample:
            torch.set_num_threads(threads)
            return benchlib.timed(lambda: generator.generate(request, init=prepared)[0].image,
                                  timer, device, steps_run)

        print(f"\nimg2img {size}x{size}, -s {args.steps} -f {args.strength} -A k_lms, "
              f"{args.repeats} interleaved rounds after {args.warmup} warm-up", flush=True)
        series = benchlib.interleaved(
            [(f"{n} thread{'s' * (n != 1)}", lambda n=n: run_with(n)) for n in args.threads],
            args.repeats, args.warmup)
    benchlib.print_table(series)
    diffs = [benchlib.max_pixel_difference(series[0].samples[0].image, s.samples[0].image)
             for s in series[1:]]
    print(f"  sanity: max pixel difference between thread counts = {max(diffs, default=0)}")
    print(benchlib.load_line("\nload after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
