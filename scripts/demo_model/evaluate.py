"""Measure the shipped demo model and write the numbers into its MODEL_CARD.md.

    python scripts/demo_model/evaluate.py          # after train.py; about a minute on a CPU

(a) Prompt adherence: txt2img for 200 training captions (20 k_lms steps), then every canonical
    training glyph is ranked by the Lab distance of its 16x16 thumbnail to the generated image;
    how often is the caption's own glyph among the 5 nearest (chance: 5/N)?
(b) img2img (k_euler): sketches (colour blobs, blurred, posterised; data.make_sketch) of glyphs, with the
    glyph's own caption and with another glyph's caption, at strengths 0.3, 0.6 and 0.9: the
    distance to the sketch should grow with strength and the distance to the prompt's own
    glyph should shrink.

It uses diffusers' own pipelines on the exported folder, so the numbers describe the weights, not
dreamline's generator.  Only the Lab-thumbnail maths and the reference glyphs come from here
(data.py, reference.npz); the font is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402

from diffusers import (  # noqa: E402
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
)

MODEL_DIR = data.REPO / "src" / "dreamline" / "data" / "demo"
STRENGTHS = (0.3, 0.6, 0.9)


def load_pipeline(model_dir: Path = MODEL_DIR) -> StableDiffusionPipeline:
    """The exported folder as a float32 diffusers pipeline with the k_lms sampler."""
    pipe = StableDiffusionPipeline.from_pretrained(
        str(model_dir), dtype=torch.float32, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False, local_files_only=True,
    )
    pipe.scheduler = LMSDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_reference(model_dir: Path = MODEL_DIR) -> tuple[np.ndarray, list[str]]:
    """Canonical glyph renders (N x 32 x 32 x 3 uint8) and their captions, shipped with the model."""
    with np.load(model_dir / "reference.npz") as ref:
        return ref["canonical"], [str(name) for name in ref["names"]]


def text_to_images(pipe: StableDiffusionPipeline, prompts: list[str], seeds: list[int], steps: int,
                   guidance: float, side: int, batch: int = 50) -> list[Image.Image]:
    images: list[Image.Image] = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        generators = [torch.Generator().manual_seed(s) for s in seeds[start : start + batch]]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, width=side,
                   height=side, generator=generators)
        images.extend(out.images)
    return images


def image_to_images(pipe: StableDiffusionImg2ImgPipeline, prompts: list[str], inits: list[Image.Image],
                    seeds: list[int], strength: float, steps: int, guidance: float,
                    batch: int = 50) -> list[Image.Image]:
    images: list[Image.Image] = []
    for start in range(0, len(prompts), batch):
        generators = [torch.Generator().manual_seed(s) for s in seeds[start : start + batch]]
        out = pipe(prompts[start : start + batch], image=inits[start : start + batch],
                   strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                   generator=generators)
        images.extend(out.images)
    return images


@dataclass
class Adherence:
    count: int
    glyphs: int
    top1: float
    top5: float
    median_rank: float


def prompt_adherence(pipe: StableDiffusionPipeline, canonical: np.ndarray, names: list[str],
                     indices: list[int], steps: int, guidance: float, seed: int) -> tuple[Adherence, list[Image.Image]]:
    """Rank of each caption's own glyph among all N, by Lab distance to the generated image."""
    side = canonical.shape[1]
    references = np.stack([data.lab_thumbnail(image) for image in canonical])
    prompts = [names[i] for i in indices]
    images = text_to_images(pipe, prompts, [seed + k for k in range(len(indices))], steps, guidance, side)
    ranks = []
    for image, own in zip(images, indices):
        distances = data.lab_distances(data.lab_thumbnail(image), references)
        ranks.append(int((distances < distances[own]).sum()))  # 0 = nearest
    ranks_array = np.array(ranks)
    result = Adherence(len(indices), len(names), float((ranks_array < 1).mean()),
                       float((ranks_array < 5).mean()), float(np.median(ranks_array) + 1))
    return result, images


def img2img_trend(pipe: StableDiffusionImg2ImgPipeline, canonical: np.ndarray, names: list[str],
                  sketch_ids: list[int], prompt_ids: list[int], steps: int, guidance: float,
                  seed: int) -> dict[str, dict[str, float]]:
    """Mean Lab distance of the outputs to the sketch and to the prompt's glyph, per strength."""
    sketches = [data.make_sketch(canonical[i]) for i in sketch_ids]
    inits = [Image.fromarray(sketch) for sketch in sketches]
    sketch_thumbs = [data.lab_thumbnail(sketch) for sketch in sketches]
    target_thumbs = [data.lab_thumbnail(canonical[i]) for i in prompt_ids]
    prompts = [names[i] for i in prompt_ids]
    seeds = [seed + k for k in range(len(prompts))]
    table: dict[str, dict[str, float]] = {}
    for strength in STRENGTHS:
        outputs = image_to_images(pipe, prompts, inits, seeds, strength, steps, guidance)
        to_init, to_prompt = [], []
        for out, init_thumb, target_thumb in zip(outputs, sketch_thumbs, target_thumbs):
            thumb = data.lab_thumbnail(out)
            to_init.append(data.lab_distances(thumb, init_thumb[None])[0])
            to_prompt.append(data.lab_distances(thumb, target_thumb[None])[0])
        table[f"{strength:.1f}"] = {"to_init": float(np.mean(to_init)),
                                    "to_prompt": float(np.mean(to_prompt))}
    table["sketch"] = {"to_init": 0.0, "to_prompt": float(np.mean(
        [data.lab_distances(s, t[None])[0] for s, t in zip(sketch_thumbs, target_thumbs)]))}
    return table


def sample_sheet(images: list[Image.Image], columns: int, zoom: int) -> Image.Image:
    side = images[0].width
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * side, rows * side), "white")
    for k, image in enumerate(images):
        sheet.paste(image, ((k % columns) * side, (k // columns) * side))
    return sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.Resampling.NEAREST)


def decreasing(values: list[float]) -> bool:
    return all(a > b for a, b in zip(values, values[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
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

    pipe = load_pipeline(args.model)
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    # k_euler for img2img: diffusers' LMSDiscreteScheduler, started part-way by the img2img
    # pipeline, returned smeared images at strength 0.3 with these weights (dreamline's own k_lms
    # img2img did not), which would measure the pipeline rather than the model.
    img2img.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    img2img.set_progress_bar_config(disable=True)
    canonical, names = load_reference(args.model)
    rng = np.random.default_rng(args.seed)
    count = min(args.count, len(names))
    indices = sorted(rng.choice(len(names), size=count, replace=False).tolist())
    sketch_ids = rng.choice(len(names), size=args.pairs, replace=False).tolist()
    shift = rng.integers(1, len(names), size=args.pairs)
    other_ids = [(i + int(s)) % len(names) for i, s in zip(sketch_ids, shift)]

    all_results = []
    for guidance in args.guidance:
        started = time.monotonic()
        adherence, images = prompt_adherence(pipe, canonical, names, indices, args.steps,
                                             guidance, args.seed)
        same = img2img_trend(img2img, canonical, names, sketch_ids, sketch_ids, args.steps,
                             guidance, args.seed)
        other = img2img_trend(img2img, canonical, names, sketch_ids, other_ids, args.steps,
                              guidance, args.seed)
        results = {
            "adherence": adherence.__dict__, "img2img_same_prompt": same,
            "img2img_other_prompt": other, "steps": args.steps, "guidance": guidance,
            "pairs": args.pairs, "sampler": "txt2img k_lms (LMSDiscreteScheduler), img2img k_euler (EulerDiscreteScheduler)",
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
    return f"""### Guidance {results['guidance']:g} ({results['steps']} k_lms steps; {results['seconds']} s on the CPU)

**Prompt adherence (txt2img).** {adherence['count']} training captions (plain names, one per
glyph); each image ranked against all {glyphs} canonical glyphs by mean Lab distance (Delta E 76)
on 16x16 thumbnails.

| measure | result | chance |
|---|---|---|
| own glyph nearest (top-1) | {adherence['top1']:.1%} | {1 / glyphs:.1%} |
| own glyph among the 5 nearest (top-5) | {adherence['top5']:.1%} | {5 / glyphs:.1%} |
| median rank of the own glyph | {adherence['median_rank']:.0f} of {glyphs} | {(glyphs + 1) / 2:.0f} |

**img2img** (k_euler, {results['steps']} steps), {results['pairs']} sketches; mean Lab distance of the output to the sketch and to the
canonical render of the prompt's glyph (lower = more alike).

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
Measured by `python scripts/demo_model/evaluate.py`: diffusers' `StableDiffusionPipeline` and
`StableDiffusionImg2ImgPipeline` on these weights, float32, CPU, fixed seeds.  Sketches are
glyphs reduced to 6x6 colour blobs, blurred and posterised to 4 levels (`data.make_sketch`).

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
