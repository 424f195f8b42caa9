"""Does channels_last pay on this CPU, and does it keep the pixels?  VAE decode, VAE encode and
one guided UNet call (a batch of two), each in the default (contiguous) layout and in
channels_last, interleaved, on the same modules.

    .venv/bin/python benchmarks/bench_layout.py --model sd15-random --size 512 --threads 1

Exactness is checked on what reaches the user: the decoded uint8 image (decode), the encoder's
mean (encode), the UNet's output (any difference there is carried through every later step).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import benchlib
import numpy as np
import torch

from dreamline.core.latents import pil_to_tensor, tensor_to_pil


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", default="decode,encode,unet")
    return parser.parse_args()


def layout(module: torch.nn.Module, channels_last: bool) -> None:
    module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def compare(name: str, module: torch.nn.Module, run: Callable[[], torch.Tensor],
            repeats: int, to_pixels: Callable[[torch.Tensor], np.ndarray] | None) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    outputs: dict[bool, torch.Tensor] = {}
    for round_index in range(repeats + 1):  # round 0: warm-up, not kept
        order = [False, True] if round_index % 2 == 0 else [True, False]
        for channels_last in order:
            layout(module, channels_last)
            started = time.perf_counter()
            with torch.inference_mode():
                out = run()
            seconds = time.perf_counter() - started
            outputs[channels_last] = out
            if round_index:
                times[channels_last].append(seconds)
    layout(module, False)
    plain, fast = min(times[False]), min(times[True])
    diff = (outputs[False].float() - outputs[True].float()).abs().max().item()
    line = (f"{name:<12} contiguous {plain:8.3f} s  channels_last {fast:8.3f} s  "
            f"speed-up {plain / fast:5.3f}x  max |diff| {diff:.3g}")
    if to_pixels is not None:
        pixels = np.abs(to_pixels(outputs[False]).astype(np.int16)
                        - to_pixels(outputs[True]).astype(np.int16))
        line += f"  uint8 pixels differing {int((pixels > 0).sum())} (max {int(pixels.max())})"
    print(line, flush=True)


def main() -> None:
    args = parse_args()
    device, dtype = benchlib.start("cpu", "float32", args.threads)
    model = benchlib.build_model(args.model, device, dtype)
    size = args.size or model.default_width
    factor = model.vae_scale_factor
    generator = torch.Generator().manual_seed(benchlib.SEED)
    latents = torch.randn(1, 4, size // factor, size // factor, generator=generator)
    context = torch.randn(2, 77, model.text_encoder.config.hidden_size, generator=generator)
    picture = pil_to_tensor(_picture(size), device, dtype)
    print(f"model {args.model}, {size}x{size}, {args.threads} thread(s), "
          f"best of {args.repeats} after a warm-up", flush=True)
    parts = args.parts.split(",")
    if "decode" in parts:
        compare("VAE decode", model.vae,
                lambda: model.vae.decode(latents / model.scaling_factor, return_dict=False)[0],
                args.repeats, lambda x: np.asarray(tensor_to_pil(x)))
    if "encode" in parts:
        compare("VAE encode", model.vae,
                lambda: model.vae.encode(picture).latent_dist.mean, args.repeats, None)
    if "unet" in parts:
        timestep = torch.tensor(500)
        compare("UNet (x2)", model.unet,
                lambda: model.unet(torch.cat([latents, latents]), timestep,
                                   encoder_hidden_states=context, return_dict=False)[0],
                args.repeats, None)
    print(benchlib.load_line("load after"))


def _picture(size: int):  # the tests' gradient picture, in memory
    from core_fixtures import gradient_image

    return gradient_image(0, size)


if __name__ == "__main__":
    main()
