"""Choose the demo model's default sampler and guidance scale on the tuning names only.

Runs ``evaluate.py``'s prompt-adherence measure on its 40 tuning names (never the 100 held-out
ones) for every (sampler, guidance) pair asked for, and prints one line per pair, best top-5
first.  The winner goes into the ``demo`` entry of ``configs/models.yaml`` (``sampler:`` and
``cfg_scale:``); ``evaluate.py`` then measures it on the held-out names.

    python scripts/demo_model/tune.py --samplers k_lms k_euler ddim --guidance 3 4 5.5 7.5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
import evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=evaluate.MODEL_DIR)
    parser.add_argument("--reference", type=Path, default=evaluate.MODEL_DIR / "reference.npz")
    parser.add_argument("--registry", type=Path, default=evaluate.REGISTRY)
    parser.add_argument("--samplers", nargs="+", default=["k_lms", "k_euler"],
                        help="-A names; name:schedule for another schedule (k_euler:karras)")
    parser.add_argument("--guidance", nargs="+", type=float, default=[4.0])
    parser.add_argument("--steps", type=int, default=evaluate.STEPS)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--aliases", type=int, default=0,
                        help="instead: the same measure for N of the other words (vocabulary.txt"
                             "'s 'name | word'), drawn with seed 14, at the model's defaults")
    parser.add_argument("--words", nargs="*", default=[], help="with --aliases: these words too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.aliases:
        measure_aliases(args)
        return

    generator = evaluate.load_generator(args.model, args.registry)
    canonical, names = evaluate.load_reference(args.reference)
    tuning, _held_out = evaluate.split_names(len(names))
    rows = []
    for word in args.samplers:
        name, _, schedule = word.partition(":")
        sampler = (name, schedule or "model")
        for guidance in args.guidance:
            started = time.monotonic()
            result, _images = evaluate.prompt_adherence(generator, canonical, names, tuning,
                                                        args.steps, guidance, args.seed, sampler)
            row = {"sampler": evaluate.sampler_label(sampler), "guidance": guidance,
                   "steps": args.steps, **result.__dict__,
                   "seconds": round(time.monotonic() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows.sort(key=lambda r: (-r["top5"], -r["top1"], r["median_rank"]))
    print(f"\n{'sampler':<28} {'-C':>5} {'top-1':>6} {'top-5':>6} {'median':>7}  (tuning names: "
          f"{len(tuning)}, {args.steps} steps)")
    for r in rows:
        print(f"{r['sampler']:<28} {r['guidance']:>5g} {r['top1']:>6.1%} {r['top5']:>6.1%} "
              f"{r['median_rank']:>7.0f}")
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


def measure_aliases(args: argparse.Namespace) -> None:
    """Top-1/top-5/median rank of the own glyph when the prompt is one of its other words."""
    generator = evaluate.load_generator(args.model, args.registry)
    canonical, names = evaluate.load_reference(args.reference)
    index = {name: k for k, name in enumerate(names)}
    pairs = []
    vocabulary = (args.model / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    for line in vocabulary:
        if line.startswith("#") or "|" not in line:
            continue
        name, *words = [part.strip() for part in line.split("|")]
        pairs += [(word, index[name]) for word in words if name in index]
    order = np.random.default_rng(evaluate.SPLIT_SEED).permutation(len(pairs))[:args.aliases]
    chosen = [pairs[k] for k in sorted(order)]
    chosen += [pair for pair in pairs if pair[0] in args.words and pair not in chosen]
    references = np.stack([data.lab_thumbnail(image) for image in canonical])
    sampler = evaluate.default_sampler(args.registry)
    guidance = evaluate.default_guidance(args.registry)
    images = evaluate.text_to_images(generator, [word for word, _ in chosen],
                                     [args.seed + k for k in range(len(chosen))], args.steps,
                                     guidance, canonical.shape[1], sampler)
    ranks = []
    for (word, own), image in zip(chosen, images, strict=True):
        distances = data.lab_distances(data.lab_thumbnail(image), references)
        ranks.append(int((distances < distances[own]).sum()))
        if word in args.words:
            print(f"{word!r} -> {names[own]!r}: rank {ranks[-1] + 1}")
    sample = np.array(ranks[:len(order)])
    print(f"{len(sample)} of {len(pairs)} other words, {evaluate.sampler_label(sampler)} "
          f"-C {guidance:g}, {args.steps} steps: top-1 {(sample < 1).mean():.1%}, top-5 "
          f"{(sample < 5).mean():.1%}, median rank {np.median(sample) + 1:g}")


if __name__ == "__main__":
    main()
