"""Measure the shipped demo model and write the numbers into its MODEL_CARD.md.

    python scripts/demo_model/evaluate.py          # after train.py; about 7 minutes on a CPU

(a) Prompt adherence: txt2img for 200 training captions (20 k_lms steps), then every canonical
    training glyph is ranked by the Lab distance of its 16x16 thumbnail to the generated image;
    how often is the caption's own glyph among the 5 nearest (chance: 5/N)?
(b) img2img (k_lms, 20 steps): sketches (colour blobs, blurred, posterised; data.make_sketch) of
    glyphs, with the glyph's own caption and with another glyph's caption, at strengths 0.3, 0.6
    and 0.9: the distance to the sketch should grow with strength and the distance to the
    prompt's own glyph should shrink.

It measures the product: the model is loaded by dreamline's own loader (through the models
registry, configs/models.yaml) and every image is made by dreamline's Generator from a Request,
as at the invoke> prompt (sketches go in as PNG init files, like -I).  Only the Lab-thumbnail
maths and the reference glyphs come from here (data.py, reference.npz); the font is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

from dreamline.core import Generator  # noqa: E402
from dreamline.init_input import prepare_init  # noqa: E402
from dreamline.models.loader import load_model  # noqa: E402
from dreamline.models.registry import ModelRegistry  # noqa: E402
from dreamline.request import Request  # noqa: E402

MODEL_DIR = data.REPO / "src" / "dreamline" / "data" / "demo"
REGISTRY = data.REPO / "configs" / "models.yaml"
SAMPLER = "k_lms"
STRENGTHS = (0.3, 0.6, 0.9)


def load_generator(model: str | Path = MODEL_DIR, registry: Path = REGISTRY) -> Generator:
    """The model as dreamline loads it (float32, CPU), behind a quiet Generator.

    ``model`` is a registry name or a path; the shipped folder's path resolves to the registry's
    ``demo`` entry (and its 32 x 32 default size)."""
    quiet = lambda line: None  # noqa: E731  (a report that says nothing)
    loaded = load_model(model, registry=ModelRegistry.load(registry), device="cpu",
                        dtype=torch.float32, report=quiet)
    return Generator(loaded, report=quiet)


def load_reference(model_dir: Path = MODEL_DIR) -> tuple[np.ndarray, list[str]]:
    """Canonical glyph renders (N x 32 x 32 x 3 uint8) and their captions, shipped with the model."""
    with np.load(model_dir / "reference.npz") as ref:
        return ref["canonical"], [str(name) for name in ref["names"]]


def generate(generator: Generator, request: Request) -> Image.Image:
    """The one image of a single-image request."""
    model = generator.model
    init = prepare_init(request, default_size=(model.default_width, model.default_height),
                        multiple=model.size_multiple, report=lambda line: None)
    (result,) = generator.generate(request, init=init)
    return result.image


def text_to_images(generator: Generator, prompts: list[str], seeds: list[int], steps: int,
                   guidance: float, side: int) -> list[Image.Image]:
    return [generate(generator, Request(prompt=prompt, steps=steps, seed=seed, cfg_scale=guidance,
                                        sampler=SAMPLER, width=side, height=side))
            for prompt, seed in zip(prompts, seeds, strict=False)]


def image_to_images(generator: Generator, prompts: list[str], init_paths: list[str],
                    seeds: list[int], strength: float, steps: int,
                    guidance: float) -> list[Image.Image]:
    return [generate(generator, Request(prompt=prompt, steps=steps, seed=seed, cfg_scale=guidance,
                                        sampler=SAMPLER, init_img=path, strength=strength))
            for prompt, path, seed in zip(prompts, init_paths, seeds, strict=False)]


@dataclass
class Adherence:
    count: int
    glyphs: int
    top1: float
    top5: float
    median_rank: float


def prompt_adherence(generator: Generator, canonical: np.ndarray, names: list[str],
                     indices: list[int], steps: int, guidance: float, seed: int) -> tuple[Adherence, list[Image.Image]]:
    """Rank of each caption's own glyph among all N, by Lab distance to the generated image."""
    side = canonical.shape[1]
    references = np.stack([data.lab_thumbnail(image) for image in canonical])
    prompts = [names[i] for i in indices]
    images = text_to_images(generator, prompts, [seed + k for k in range(len(indices))], steps, guidance, side)
    ranks = []
    for image, own in zip(images, indices, strict=False):
        distances = data.lab_distances(data.lab_thumbnail(image), references)
        ranks.append(int((distances < distances[own]).sum()))  # 0 = nearest
    ranks_array = np.array(ranks)
    result = Adherence(len(indices), len(names), float((ranks_array < 1).mean()),
                       float((ranks_array < 5).mean()), float(np.median(ranks_array) + 1))
    return result, images


def img2img_trend(generator: Generator, canonical: np.ndarray, names: list[str],
                  sketch_ids: list[int], prompt_ids: list[int], steps: int, guidance: float,
                  seed: int, workdir: Path) -> dict[str, dict[str, float]]:
    """Mean Lab distance of the outputs to the sketch and to the prompt's glyph, per strength.

    The sketches are written to ``workdir`` as PNGs (lossless) and given as init files."""
    sketches = [data.make_sketch(canonical[i]) for i in sketch_ids]
    init_paths = []
    for index, sketch in zip(sketch_ids, sketches, strict=False):
        path = workdir / f"sketch_{index:03d}.png"
        Image.fromarray(sketch).save(path)
        init_paths.append(str(path))
    sketch_thumbs = [data.lab_thumbnail(sketch) for sketch in sketches]
    target_thumbs = [data.lab_thumbnail(canonical[i]) for i in prompt_ids]
    prompts = [names[i] for i in prompt_ids]
    seeds = [seed + k for k in range(len(prompts))]
    table: dict[str, dict[str, float]] = {}
    for strength in STRENGTHS:
        outputs = image_to_images(generator, prompts, init_paths, seeds, strength, steps,
                                  guidance)
        to_init, to_prompt = [], []
        for out, init_thumb, target_thumb in zip(outputs, sketch_thumbs, target_thumbs, strict=False):
            thumb = data.lab_thumbnail(out)
            to_init.append(data.lab_distances(thumb, init_thumb[None])[0])
            to_prompt.append(data.lab_distances(thumb, target_thumb[None])[0])
        table[f"{strength:.1f}"] = {"to_init": float(np.mean(to_init)),
                                    "to_prompt": float(np.mean(to_prompt))}
    table["sketch"] = {"to_init": 0.0, "to_prompt": float(np.mean(
        [data.lab_distances(s, t[None])[0] for s, t in zip(sketch_thumbs, target_thumbs, strict=False)]))}
    return table


def sample_sheet(images: list[Image.Image], columns: int, zoom: int) -> Image.Image:
    side = images[0].width
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * side, rows * side), "white")
    for k, image in enumerate(images):
        sheet.paste(image, ((k % columns) * side, (k // columns) * side))
    return sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.Resampling.NEAREST)


def decreasing(values: list[float]) -> bool:
    return all(a > b for a, b in zip(values, values[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL_DIR,
                        help="the exported model folder (also read: reference.npz, MODEL_CARD.md)")
    parser.add_argument("--registry", type=Path, default=REGISTRY,
                        help="the models.yaml that dreamline's loader resolves the model through")
    parser.add_argument("--count", type=int, default=200, help="captions for prompt adherence")
    parser.add_argument("--pairs", type=int, default=50, help="sketch/prompt pairs for img2img")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, nargs="+", default=[4.0, 7.5],
                        help="classifier-free guidance scales to measure (7.5 = dreamline's -C default)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-card", action="store_true", help="print the numbers only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = load_generator(args.model, args.registry)
    canonical, names = load_reference(args.model)
    rng = np.random.default_rng(args.seed)
    count = min(args.count, len(names))
    indices = sorted(rng.choice(len(names), size=count, replace=False).tolist())
    sketch_ids = rng.choice(len(names), size=args.pairs, replace=False).tolist()
    shift = rng.integers(1, len(names), size=args.pairs)
    other_ids = [(i + int(s)) % len(names) for i, s in zip(sketch_ids, shift, strict=False)]

    all_results = []
    with tempfile.TemporaryDirectory(prefix="dreamline-eval-") as workdir:
        for guidance in args.guidance:
            started = time.monotonic()
            adherence, images = prompt_adherence(generator, canonical, names, indices, args.steps,
                                                 guidance, args.seed)
            same = img2img_trend(generator, canonical, names, sketch_ids, sketch_ids, args.steps,
                                 guidance, args.seed, Path(workdir))
            other = img2img_trend(generator, canonical, names, sketch_ids, other_ids, args.steps,
                                  guidance, args.seed, Path(workdir))
            results = {
                "adherence": adherence.__dict__, "img2img_same_prompt": same,
                "img2img_other_prompt": other, "steps": args.steps, "guidance": guidance,
                "pairs": args.pairs,
                "sampler": f"dreamline Generator, {SAMPLER} for txt2img and img2img",
                "seconds": round(time.monotonic() - started, 1),
            }
            print(json.dumps(results, indent=2), flush=True)
            sheet = sample_sheet(images[:40], columns=10, zoom=2)
            sheet.save(data.TRAIN_DIR / f"eval_samples_cfg{guidance:g}.png")
            all_results.append(results)
    (data.TRAIN_DIR / "eval_results.json").write_text(json.dumps(all_results, indent=2) + "\n")
    if not args.no_card:
        write_card(args.model, all_results)


def trend_rows(table: dict[str, dict[str, float]]) -> str:
    rows = [f"| sketch itself | 0.0 | {table['sketch']['to_prompt']:.1f} |"]
    for strength in STRENGTHS:
        cell = table[f"{strength:.1f}"]
        rows.append(f"| {strength:.1f} | {cell['to_init']:.1f} | {cell['to_prompt']:.1f} |")
    return "\n".join(rows)


def trend_check(table: dict[str, dict[str, float]]) -> str:
    init = [table[f"{s:.1f}"]["to_init"] for s in STRENGTHS]
    prompt = [table[f"{s:.1f}"]["to_prompt"] for s in STRENGTHS]
    return (f"distance to the sketch rises with strength: {'yes' if decreasing(init[::-1]) else 'NO'}; "
            f"distance to the prompt's glyph falls: {'yes' if decreasing(prompt) else 'NO'}")


def card_section(results: dict) -> str:
    """The measured numbers at one guidance scale, as markdown."""
    adherence = results["adherence"]
    same, other = results["img2img_same_prompt"], results["img2img_other_prompt"]
    glyphs = adherence["glyphs"]
    return f"""### Guidance {results['guidance']:g} ({results['steps']} {SAMPLER} steps; {results['seconds']} s on the CPU)

**Prompt adherence (txt2img).** {adherence['count']} training captions (plain names, one per
glyph); each image ranked against all {glyphs} canonical glyphs by mean Lab distance (Delta E 76)
on 16x16 thumbnails.

| measure | result | chance |
|---|---|---|
| own glyph nearest (top-1) | {adherence['top1']:.1%} | {1 / glyphs:.1%} |
| own glyph among the 5 nearest (top-5) | {adherence['top5']:.1%} | {5 / glyphs:.1%} |
| median rank of the own glyph | {adherence['median_rank']:.0f} of {glyphs} | {(glyphs + 1) / 2:.0f} |

**img2img** ({SAMPLER}, {results['steps']}-step schedule), {results['pairs']} sketches; mean Lab distance of
the output to the sketch and to the canonical render of the prompt's glyph (lower = more alike).

Prompt = another glyph's caption ({trend_check(other)}):

| strength | to the sketch | to the prompt's glyph |
|---|---|---|
{trend_rows(other)}

Prompt = the sketched glyph's own caption ({trend_check(same)}):

| strength | to the sketch | to the prompt's glyph |
|---|---|---|
{trend_rows(same)}
"""


def write_card(model_dir: Path, all_results: list[dict]) -> None:
    """Fill the measured section of MODEL_CARD.md (between the markers), keeping the rest."""
    card_path = model_dir / "MODEL_CARD.md"
    card = card_path.read_text()
    begin, end = "<!-- measured:begin -->", "<!-- measured:end -->"
    stats_path = data.TRAIN_DIR / "train_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    sections = "\n".join(card_section(results) for results in all_results)
    body = f"""{begin}
Measured by `python scripts/demo_model/evaluate.py` through dreamline itself: the model loaded
by dreamline's loader (the `demo` entry of `configs/models.yaml`) and every image made by
dreamline's `Generator` from a `Request`, with `{SAMPLER}` for both txt2img and img2img (sketches
given as PNG init files, as `-I`); float32, CPU, fixed seeds.  Sketches are glyphs reduced to
6x6 colour blobs, blurred and posterised to 4 levels (`data.make_sketch`).

Training run: {stats.get('glyphs', '?')} glyphs, {stats.get('images', '?')} images; VAE latent std
{stats.get('latent_std', float('nan')):.4f} (so `scaling_factor` = 1/std), VAE mean reconstruction
error {stats.get('vae_recon_mae_255', float('nan')):.1f}/255 per channel; {stats.get('steps', '?')}
UNet steps of batch {stats.get('batch', '?')}, {stats.get('train_minutes', '?')} minutes in all.

{sections}{end}"""
    if begin in card and end in card:
        card = card[: card.index(begin)] + body + card[card.index(end) + len(end):]
    else:
        card = card.rstrip() + "\n\n" + body + "\n"
    card_path.write_text(card)
    print(f"wrote the measured numbers into {card_path}")


if __name__ == "__main__":
    main()
