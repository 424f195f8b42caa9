"""dreamline's whole img2img command against diffusers' pipeline, for the REPL's common work:
one line, one line with -n 4, and an 8-line prompt file whose lines share prompts and init
images.  Same module objects, same settings, pixels checked.

    .venv/bin/python benchmarks/bench_vs_diffusers.py --model sd15-random --size 128 --threads 1

dreamline's side is what a line costs in the REPL: the init file read, fitted and hashed
(dreamline.init_input.prepare_init) and ``Generator.generate``; one Generator per case, fresh
(cold caches) at the case's start and kept across the case's lines, as a REPL keeps it.
diffusers' side is ``StableDiffusionImg2ImgPipeline`` with ``LMSDiscreteScheduler``, called once
per image with that image's seed (dreamline's ``-n`` seeds), the init PNG opened per call.
Each case runs once per contender (CPU time is scarce here); the order alternates per case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import benchlib
import torch
from diffusers import LMSDiscreteScheduler, StableDiffusionImg2ImgPipeline
from PIL import Image

from dreamline.core import Generator
from dreamline.core.noise import derive_seed
from dreamline.init_input import prepare_init
from dreamline.models.types import LoadedModel
from dreamline.request import Request

# (prompt, negative): dreamline writes the negative as "[...]", diffusers takes negative_prompt
class RampedLMS(LMSDiscreteScheduler):
    """diffusers' LMS with the order ramped from the first step run, as dreamline's k_lms (and
    k-diffusion) do; stock LMS in img2img starts at 4th order (tests/test_equivalence.py)."""

    def step(self, model_output, timestep, sample, order=4, return_dict=True):  # noqa: ANN001
        order = min(order, len(self.derivatives) + 1)
        return super().step(model_output, timestep, sample, order=order, return_dict=return_dict)


PROMPTS = (("a tree by a river, oil painting", ""),
           ("a lighthouse at dusk", "blurry, low quality"))


@dataclass(frozen=True)
class Line:
    prompt: tuple[str, str]  # (prompt, negative)
    init: int  # which init picture
    seed: int
    iterations: int = 1


def cases(seed: int) -> dict[str, list[Line]]:
    """one: a line; n4: that line with -n 4; file8: 8 lines over 2 prompts and 2 pictures."""
    file8 = [Line(PROMPTS[p], i, seed + n) for n, (p, i) in
             enumerate([(0, 0), (0, 0), (1, 0), (1, 1), (0, 1), (0, 1), (1, 1), (0, 0)])]
    return {"one": [Line(PROMPTS[0], 0, seed)], "n4": [Line(PROMPTS[0], 0, seed, 4)],
            "file8": file8}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny | sd15-random | a name or path")
    parser.add_argument("--size", type=int, default=None, help="square side (default: model's)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.75)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", default="one,n4,file8")
    return parser.parse_args()


@dataclass
class Outcome:
    seconds: float
    unet_seconds: float
    peak_rss_mib: float | None
    text_calls: int
    encoder_calls: int
    images: list[Image.Image]


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: object) -> None:
        self.count += 1


def measured(run: Callable[[], list[Image.Image]], model: LoadedModel,
             timer: benchlib.UNetTimer) -> Outcome:
    text, encoder = Counter(), Counter()
    hooks = [model.text_encoder.register_forward_hook(text),
             model.vae.encoder.register_forward_hook(encoder)]
    timer.reset()
    try:
        with benchlib.measure_memory(model.device) as memory:
            started = time.perf_counter()
            images = run()
            seconds = time.perf_counter() - started
    finally:
        for hook in hooks:
            hook.remove()
    return Outcome(seconds, timer.unet_seconds, memory.peak_rss_mib, text.count, encoder.count,
                   images)


def main() -> int:
    args = parse_args()
    device, dtype = benchlib.start("cpu", "float32", args.threads)
    model = benchlib.build_model(args.model, device, dtype)
    size = args.size or model.default_width
    timer = benchlib.attach_timer(model.unet, device)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
        unet=model.unet, scheduler=RampedLMS.from_config(model.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-vs-diffusers-"))
    from core_fixtures import gradient_image

    inits = []
    for kind in (0, 1):
        inits.append(tmp / f"init-{kind}.png")
        gradient_image(kind, size).save(inits[-1])

    def request(line: Line, steps: int | None = None) -> Request:
        text, negative = line.prompt
        return Request(prompt=f"{text} [{negative}]" if negative else text,
                       steps=steps or args.steps, seed=line.seed,
                       cfg_scale=args.cfg, sampler="k_lms", init_img=str(inits[line.init]),
                       strength=args.strength, iterations=line.iterations)

    def ours(lines: list[Line], steps: int | None = None) -> tuple[list[Image.Image], list[int]]:
        generator = Generator(model, report=benchlib.quiet)  # cold caches per case
        images, seeds = [], []
        for line in lines:
            wanted = request(line, steps)
            init = prepare_init(wanted, default_size=(model.default_width, model.default_height),
                                multiple=model.size_multiple, report=benchlib.quiet)
            for made in generator.generate(wanted, init=init):
                images.append(made.image)
                seeds.append(made.seed)
        return images, seeds

    def theirs(lines: list[Line], seeds: list[int], steps: int | None = None
               ) -> list[Image.Image]:
        images, position = [], 0
        for line in lines:
            for _ in range(line.iterations):
                picture = Image.open(inits[line.init]).convert("RGB")
                text, negative = line.prompt
                images.append(pipe(text, negative_prompt=negative or None, image=picture,
                                   strength=args.strength,
                                   num_inference_steps=steps or args.steps,
                                   guidance_scale=args.cfg,
                                   generator=torch.Generator().manual_seed(seeds[position])
                                   ).images[0])
                position += 1
        return images

    print(f"model {args.model}, img2img {size}x{size} -s {args.steps} -f {args.strength} "
          f"-C {args.cfg} -A k_lms, {torch.get_num_threads()} thread(s), one run per case",
          flush=True)
    warm = [Line(PROMPTS[0], 0, 1)]  # untimed: first calls pay for lazy set-up
    _images, warm_seeds = ours(warm, steps=4)
    theirs(warm, warm_seeds, steps=4)
    rows = []
    for index, name in enumerate(args.cases.split(",")):
        lines = cases(benchlib.SEED)[name]
        # each image's seed as dreamline's -n plan gives it (image 0: the line's own seed)
        seeds = [derive_seed(line.seed, i) for line in lines for i in range(line.iterations)]
        contenders = [("ours", lambda lines=lines: ours(lines)[0]),
                      ("theirs", lambda lines=lines, seeds=seeds: theirs(lines, seeds))]
        if index % 2:
            contenders.reverse()
        done = {key: measured(run, model, timer) for key, run in contenders}
        a, b = done["ours"], done["theirs"]
        diff = max(benchlib.max_pixel_difference(x, y) for x, y in zip(a.images, b.images,
                                                                         strict=True))
        rows.append((name, len(a.images), a, b, diff))
        print(f"  {name}: dreamline {a.seconds:.2f} s, diffusers {b.seconds:.2f} s, "
              f"ratio {a.seconds / b.seconds:.3f}, max pixel difference {diff}", flush=True)
    print("\n| case | images | dreamline s | diffusers s | ratio | UNet s (ours/theirs) | "
          "text-encoder runs | VAE-encoder runs | peak RSS MiB (ours/theirs) | max pixel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, count, a, b, diff in rows:
        print(f"| {name} | {count} | {a.seconds:.2f} | {b.seconds:.2f} | "
              f"{a.seconds / b.seconds:.3f} | {a.unet_seconds:.1f} / {b.unet_seconds:.1f} | "
              f"{a.text_calls} / {b.text_calls} | {a.encoder_calls} / {b.encoder_calls} | "
              f"{a.peak_rss_mib:.0f} / {b.peak_rss_mib:.0f} | {diff} |")
    print(benchlib.load_line("load after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
