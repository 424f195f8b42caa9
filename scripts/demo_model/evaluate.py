"""Measure the shipped demo model and write the numbers into its MODEL_CARD.md.

    python scripts/demo_model/evaluate.py          # after train.py; a few minutes on a CPU

(a) Prompt adherence (txt2img) on two fixed sets of emoji names, drawn with a fixed seed before
    any result was seen (``split_names``): a *tuning* set of 40, the only names any choice of
    settings may look at, and a *held-out* set of 100, measured once.  Each image is ranked
    against the canonical render of every glyph the font draws (the full candidate pool of
    reference.npz) by the Lab distance of 16x16 thumbnails: how often is the name's own glyph
    the nearest, or among the 5 nearest (chance: 5/N)?
(b) img2img: sketches (colour blobs, blurred, posterised; data.make_sketch) of glyphs, with the
    glyph's own caption and with another glyph's caption, at strengths 0.3, 0.6 and 0.9: the
    distance to the sketch should grow with strength and the distance to the prompt's own
    glyph should shrink (IMG2IMG.md: low -f keeps the init image, high -f follows the prompt).

Everything runs at the model's defaults as invoke> gives them: the guidance scale of its
registry entry (configs/models.yaml), the default sampler and step count of a Request.

It measures the product: the model is loaded by dreamline's own loader (through the models
registry, configs/models.yaml) and every image is made by dreamline's Generator from a Request,
as at the invoke> prompt (sketches go in as PNG init files, like -I).  Only the Lab-thumbnail
maths and the reference glyphs come from here (data.py, reference.npz); the font is not needed.

    python scripts/demo_model/evaluate.py --model OLD_FOLDER --baseline-out old.json --no-card
    python scripts/demo_model/evaluate.py --baseline old.json     # card: old vs new
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
STEPS = Request().steps  # the default step count of a prompt line
STRENGTHS = (0.3, 0.6, 0.9)
SPLIT_SEED = 14  # the name sets below were fixed with this seed before any result was seen
TUNING_COUNT = 40
HELD_OUT_COUNT = 100


def split_names(count: int, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    """(tuning, held-out): disjoint sorted index lists into the ``count`` reference names."""
    order = np.random.default_rng(seed).permutation(count).tolist()
    tuning = sorted(order[:TUNING_COUNT])
    held_out = sorted(order[TUNING_COUNT:TUNING_COUNT + HELD_OUT_COUNT])
    return tuning, held_out


def default_guidance(registry: Path = REGISTRY, name: str = "demo") -> float:
    """The model's own default -C (its registry entry's cfg_scale), else a Request's."""
    entry = ModelRegistry.load(registry).find(name)
    if entry is None or entry.cfg_scale is None:
        return Request().cfg_scale
    return float(entry.cfg_scale)


def default_sampler(registry: Path = REGISTRY, name: str = "demo") -> tuple[str, str]:
    """The model's own default (-A, --schedule) (its registry entry's sampler), else a Request's."""
    entry = ModelRegistry.load(registry).find(name)
    if entry is None or entry.sampler is None:
        return Request().sampler, Request().schedule
    return entry.sampler, entry.schedule or "model"


def load_generator(model: str | Path = MODEL_DIR, registry: Path = REGISTRY) -> Generator:
    """The model as dreamline loads it (float32, CPU), behind a quiet Generator.

    ``model`` is a registry name or a path; the shipped folder's path resolves to the registry's
    ``demo`` entry (and its 32 x 32 default size)."""
    quiet = lambda line: None  # noqa: E731  (a report that says nothing)
    loaded = load_model(model, registry=ModelRegistry.load(registry), device="cpu",
                        dtype=torch.float32, report=quiet)
    return Generator(loaded, report=quiet)


def load_reference(path: Path = MODEL_DIR / "reference.npz") -> tuple[np.ndarray, list[str]]:
    """Canonical glyph renders (N x 32 x 32 x 3 uint8) and their captions, shipped with the model."""
    with np.load(path) as ref:
        return ref["canonical"], [str(name) for name in ref["names"]]


def generate(generator: Generator, request: Request) -> Image.Image:
    """The one image of a single-image request."""
    model = generator.model
    init = prepare_init(request, default_size=(model.default_width, model.default_height),
                        multiple=model.size_multiple, report=lambda line: None)
    (result,) = generator.generate(request, init=init)
    return result.image


def text_to_images(generator: Generator, prompts: list[str], seeds: list[int], steps: int,
                   guidance: float, side: int, sampler: tuple[str, str]) -> list[Image.Image]:
    return [generate(generator, Request(prompt=prompt, steps=steps, seed=seed, cfg_scale=guidance,
                                        sampler=sampler[0], schedule=sampler[1], width=side,
                                        height=side))
            for prompt, seed in zip(prompts, seeds, strict=False)]


def image_to_images(generator: Generator, prompts: list[str], init_paths: list[str],
                    seeds: list[int], strength: float, steps: int,
                    guidance: float, sampler: tuple[str, str]) -> list[Image.Image]:
    return [generate(generator, Request(prompt=prompt, steps=steps, seed=seed, cfg_scale=guidance,
                                        sampler=sampler[0], schedule=sampler[1], init_img=path,
                                        strength=strength))
            for prompt, path, seed in zip(prompts, init_paths, seeds, strict=False)]


@dataclass
class Adherence:
    count: int
    glyphs: int
    top1: float
    top5: float
    median_rank: float


def prompt_adherence(generator: Generator, canonical: np.ndarray, names: list[str],
                     indices: list[int], steps: int, guidance: float, seed: int,
                     sampler: tuple[str, str]) -> tuple[Adherence, list[Image.Image]]:
    """Rank of each caption's own glyph among all N, by Lab distance to the generated image."""
    side = canonical.shape[1]
    references = np.stack([data.lab_thumbnail(image) for image in canonical])
    prompts = [names[i] for i in indices]
    images = text_to_images(generator, prompts, [seed + k for k in range(len(indices))], steps,
                            guidance, side, sampler)
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
                  seed: int, workdir: Path, sampler: tuple[str, str]) -> dict[str, dict[str, float]]:
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
                                  guidance, sampler)
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
                        help="the exported model folder (also read: MODEL_CARD.md)")
    parser.add_argument("--reference", type=Path, default=MODEL_DIR / "reference.npz",
                        help="the candidate glyphs and their names (default: the shipped model's)")
    parser.add_argument("--registry", type=Path, default=REGISTRY,
                        help="the models.yaml that dreamline's loader resolves the model through")
    parser.add_argument("--pairs", type=int, default=50, help="sketch/prompt pairs for img2img")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance (default: the model's registry default)")
    parser.add_argument("--sampler", default=None,
                        help="-A for every image (default: the model's registry default)")
    parser.add_argument("--schedule", default="model", help="--schedule with --sampler")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="results of an earlier model (--baseline-out) for the card's old column")
    parser.add_argument("--baseline-out", type=Path, default=None, help="write the results here")
    parser.add_argument("--no-card", action="store_true", help="print the numbers only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    guidance = args.guidance if args.guidance is not None else default_guidance(args.registry)
    sampler = ((args.sampler, args.schedule) if args.sampler is not None
               else default_sampler(args.registry))

    generator = load_generator(args.model, args.registry)
    canonical, names = load_reference(args.reference)
    tuning, held_out = split_names(len(names))
    rng = np.random.default_rng(args.seed)
    sketch_ids = rng.choice(len(names), size=args.pairs, replace=False).tolist()
    shift = rng.integers(1, len(names), size=args.pairs)
    other_ids = [(i + int(s)) % len(names) for i, s in zip(sketch_ids, shift, strict=False)]

    started = time.monotonic()
    results: dict = {"steps": args.steps, "guidance": guidance, "pairs": args.pairs,
                     "sampler": sampler_label(sampler)}
    for label, indices in (("tuning", tuning), ("held_out", held_out)):
        adherence, images = prompt_adherence(generator, canonical, names, indices, args.steps,
                                             guidance, args.seed, sampler)
        results[label] = adherence.__dict__
        print(label, json.dumps(adherence.__dict__), flush=True)
        data.TRAIN_DIR.mkdir(exist_ok=True)
        sample_sheet(images[:40], columns=10, zoom=2).save(data.TRAIN_DIR / f"eval_{label}.png")
    with tempfile.TemporaryDirectory(prefix="dreamline-eval-") as workdir:
        results["img2img_same_prompt"] = img2img_trend(
            generator, canonical, names, sketch_ids, sketch_ids, args.steps, guidance,
            args.seed, Path(workdir), sampler)
        results["img2img_other_prompt"] = img2img_trend(
            generator, canonical, names, sketch_ids, other_ids, args.steps, guidance,
            args.seed, Path(workdir), sampler)
    results["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(results, indent=2), flush=True)
    (data.TRAIN_DIR / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.baseline_out is not None:
        args.baseline_out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_card:
        baseline = json.loads(args.baseline.read_text()) if args.baseline else None
        write_card(args.model, results, baseline)


def sampler_label(sampler: tuple[str, str]) -> str:
    """``k_euler`` or ``k_euler --schedule karras``: the -A of every image, as a prompt line says it."""
    name, schedule = sampler
    return name if schedule == "model" else f"{name} --schedule {schedule}"


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


def adherence_rows(results: dict, baseline: dict | None) -> str:
    """The adherence table: tuning and held-out sets, with the old model's column if given."""
    glyphs = results["held_out"]["glyphs"]
    old = baseline is not None
    rows = []
    for label, key in (("held-out names", "held_out"), ("tuning names", "tuning")):
        now = results[key]
        before = baseline[key] if old else None
        for measure, field, fmt in (("own glyph nearest (top-1)", "top1", "{:.1%}"),
                                    ("own glyph among the 5 nearest (top-5)", "top5", "{:.1%}"),
                                    ("median rank of the own glyph", "median_rank", "{:.0f}")):
            cells = [f"{label} ({now['count']})", measure]
            if old:
                cells.append(fmt.format(before[field]))
            cells.append(fmt.format(now[field]))
            chance = {"top1": f"{1 / glyphs:.1%}", "top5": f"{5 / glyphs:.1%}",
                      "median_rank": f"{(glyphs + 1) / 2:.0f}"}[field]
            cells.append(chance)
            rows.append("| " + " | ".join(cells) + " |")
    head = "| names | measure | old model | this model | chance |" if old else \
        "| names | measure | result | chance |"
    rule = "|---|---|---|---|---|" if old else "|---|---|---|---|"
    return "\n".join([head, rule, *rows])


def card_section(results: dict, baseline: dict | None = None) -> str:
    """The measured numbers, as markdown."""
    same, other = results["img2img_same_prompt"], results["img2img_other_prompt"]
    glyphs = results["held_out"]["glyphs"]
    old_note = ("  The old model (200 glyphs, before this retraining) was measured the same way, "
                "on the same names and candidates.") if baseline is not None else ""
    return f"""### At the model's defaults: guidance {results['guidance']:g}, {results['steps']} {results['sampler']} steps ({results['seconds']} s on the CPU in all)

**Prompt adherence (txt2img).** Names drawn at random from all {glyphs} (seed {SPLIT_SEED}, fixed
before any result was seen): {TUNING_COUNT} for tuning, {HELD_OUT_COUNT} held out from every choice;
the prompt is the plain Unicode name.  Each image is ranked against the canonical renders of all
{glyphs} glyphs by mean Lab distance (Delta E 76) on 16x16 thumbnails.{old_note}

{adherence_rows(results, baseline)}

**img2img** ({results['sampler']}, {results['steps']}-step schedule), {results['pairs']} sketches; mean Lab distance of
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


def write_card(model_dir: Path, results: dict, baseline: dict | None = None) -> None:
    """Fill the measured section of MODEL_CARD.md (between the markers), keeping the rest."""
    card_path = model_dir / "MODEL_CARD.md"
    card = card_path.read_text()
    begin, end = "<!-- measured:begin -->", "<!-- measured:end -->"
    stats_path = data.TRAIN_DIR / "train_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    sections = card_section(results, baseline)
    body = f"""{begin}
Measured by `python scripts/demo_model/evaluate.py --baseline old.json` through dreamline itself: the model loaded
by dreamline's loader (the `demo` entry of `configs/models.yaml`) and every image made by
dreamline's `Generator` from a `Request`, with `{results['sampler']}` for both txt2img and img2img (sketches
given as PNG init files, as `-I`); float32, CPU, fixed seeds.  Sketches are glyphs reduced to
6x6 colour blobs, blurred and posterised to 4 levels (`data.make_sketch`).

Training run: {stats.get('glyphs', '?')} glyphs, {stats.get('images', '?')} images; VAE latent std
{stats.get('latent_std', float('nan')):.4f} (so `scaling_factor` = 1/std), VAE mean reconstruction
error {stats.get('vae_recon_mae_255', float('nan')):.1f}/255 per channel; {stats.get('steps', '?')}
UNet steps of batch {stats.get('batch', '?')}, {stats.get('train_minutes', '?')} minutes of training in all.

{sections}{end}"""
    if begin in card and end in card:
        card = card[: card.index(begin)] + body + card[card.index(end) + len(end):]
    else:
        card = card.rstrip() + "\n\n" + body + "\n"
    card_path.write_text(card)
    print(f"wrote the measured numbers into {card_path}")


if __name__ == "__main__":
    main()
