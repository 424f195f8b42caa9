"""dreamline's Generator against diffusers' pipelines on the same weights, side by side.

    .venv/bin/python benchmarks/bench_img2img.py                       # tiny model, 64x64
    .venv/bin/python benchmarks/bench_img2img.py --model sd15-random   # full SD 1.5, 256x256
    .venv/bin/python benchmarks/bench_img2img.py --model /path/to/v1-5.safetensors --size 512

Both sides share the very same UNet/VAE/text-encoder modules and the LMS schedule, and run
interleaved in one process, so the comparison is about the code around the networks (our loop,
guidance, noise and image handling versus StableDiffusionImg2ImgPipeline/StableDiffusionPipeline)
and not about two differently loaded machines.  A max-pixel-difference line checks that both
made the same picture; the tests assert it, this only shows it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import benchlib
import torch
from diffusers import LMSDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image

from dreamline.core import Generator, steps_to_run
from dreamline.errors import DreamlineError
from dreamline.init_input import prepare_init
from dreamline.models.types import LoadedModel
from dreamline.request import Request

# Per-model defaults: the tiny one is cheap; SD 1.5 on a CPU costs seconds per UNet call.
DEFAULTS = {
    "tiny": dict(size=64, steps=20, strength=0.75, repeats=5, mode="both"),
    "sd15-random": dict(size=256, steps=4, strength=0.5, repeats=2, mode="img2img"),
}
FALLBACK = dict(size=None, steps=20, strength=0.75, repeats=3, mode="img2img")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny",
                        help="tiny | sd15-random | a models.yaml name | a path (default tiny)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto")
    parser.add_argument("--precision", default="float32",
                        help="float32 | float16 | bfloat16 | auto (default float32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--size", type=int, help="image side in pixels (square)")
    parser.add_argument("--steps", type=int, help="-s: steps of the full schedule")
    parser.add_argument("--strength", type=float, help="-f: img2img strength")
    parser.add_argument("--repeats", type=int, help="timed runs per contender")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--mode", choices=("img2img", "txt2img", "both"))
    parser.add_argument("--cfg", type=float, default=7.5, help="-C guidance scale")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS.get(args.model, FALLBACK).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def pipeline_parts(model: LoadedModel) -> dict:
    """The model's own modules for a diffusers pipeline, with diffusers' LMS scheduler."""
    return dict(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                unet=model.unet,
                scheduler=LMSDiscreteScheduler.from_config(model.scheduler_config),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def compare(mode: str, model: LoadedModel, args: argparse.Namespace, init_path: Path,
            timer: benchlib.UNetTimer) -> None:
    generator = Generator(model, report=benchlib.quiet)
    size = args.size
    if mode == "img2img":
        pipe = StableDiffusionImg2ImgPipeline(**pipeline_parts(model))
        init = Image.open(init_path).convert("RGB")
        steps_run = steps_to_run(args.strength, args.steps)
        request = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=benchlib.SEED,
                          cfg_scale=args.cfg, sampler="k_lms", init_img=str(init_path),
                          strength=args.strength)

        def theirs() -> Image.Image:
            return pipe(benchlib.PROMPT, image=init, strength=args.strength,
                        num_inference_steps=args.steps, guidance_scale=args.cfg,
                        generator=torch.Generator().manual_seed(benchlib.SEED)).images[0]
    else:
        pipe = StableDiffusionPipeline(**pipeline_parts(model))
        steps_run = args.steps
        request = Request(prompt=benchlib.PROMPT, steps=args.steps, seed=benchlib.SEED,
                          cfg_scale=args.cfg, sampler="k_lms", width=size, height=size)

        def theirs() -> Image.Image:
            return pipe(benchlib.PROMPT, height=size, width=size,
                        num_inference_steps=args.steps, guidance_scale=args.cfg,
                        generator=torch.Generator().manual_seed(benchlib.SEED)).images[0]
    pipe.set_progress_bar_config(disable=True)

    prepared = prepare_init(request, default_size=(model.default_width, model.default_height),
                            multiple=model.size_multiple, report=benchlib.quiet)

    def ours() -> Image.Image:
        return generator.generate(request, init=prepared)[0].image

    print(f"\n{mode} {size}x{size}, -s {args.steps}"
          + (f" -f {args.strength}" if mode == "img2img" else "")
          + f" -C {args.cfg} -A k_lms, {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up", flush=True)
    series = benchlib.interleaved(
        [("dreamline", lambda: benchlib.timed(ours, timer, model.device, steps_run)),
         ("diffusers", lambda: benchlib.timed(theirs, timer, model.device, steps_run))],
        args.repeats, args.warmup)
    benchlib.print_table(series)
    diffs = [benchlib.max_pixel_difference(a.image, b.image)
             for a, b in zip(series[0].samples, series[1].samples, strict=False)
             if a.image and b.image]
    print(f"  sanity: max pixel difference dreamline vs diffusers = {max(diffs)} "
          f"(0-255 scale; over {len(diffs)} pairs)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device, dtype = benchlib.start(args.device, args.precision, args.threads)
    started = benchlib.time.perf_counter()
    try:
        model = benchlib.build_model(args.model, device, dtype)
    except DreamlineError as error:  # a bad path or file: the loader's one-line message
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model {args.model}: ready in {benchlib.time.perf_counter() - started:.1f} s "
          f"(UNet {sum(p.numel() for p in model.unet.parameters()) / 1e6:.1f} M parameters)")
    if args.size is None:
        args.size = model.default_width
    if args.size % model.size_multiple:
        print(f"--size {args.size} must be a multiple of {model.size_multiple} for this model",
              file=sys.stderr)
        return 2
    timer = benchlib.attach_timer(model.unet, device)
    modes = ("img2img", "txt2img") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory() as tmp:
        init_path = benchlib.init_image_file(Path(tmp), args.size)
        for mode in modes:
            compare(mode, model, args, init_path, timer)
    print(benchlib.load_line("\nload after"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
