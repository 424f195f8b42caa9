"""Training data for the built-in demo model: Noto Color Emoji glyphs with their Unicode names.

Why emoji: the font is free (SIL Open Font License 1.1), installable from Debian
(``fonts-noto-color-emoji``), and every glyph comes with a short, honest English caption (its
Unicode name), so a small text-to-image model can learn real prompt -> picture mappings.

The glyphs are rendered once with Pillow (the font is a CBDT bitmap font, drawn at size 109 with
``embedded_color=True``), a diverse subset is picked, and augmented copies (position, scale,
background colour) are cached as one ``.npz`` in ``.train/``.

    python scripts/demo_model/data.py            # builds .train/emoji_<size>px_<n>.npz

The Lab-thumbnail helpers here are shared by ``evaluate.py`` and ``tests/test_demo_model.py``; they
need only numpy and Pillow (no font), so they work where the font is not installed.
"""

from __future__ import annotations

import argparse
import unicodedata
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parents[2]
TRAIN_DIR = REPO / ".train"
FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# CLDR's English emoji annotations (Debian: unicode-cldr-core): the short names people type.
CLDR_ANNOTATIONS = Path("/usr/share/unicode/cldr/common/annotations/en.xml")
FONT_SIZE = 109  # the only size at which Pillow draws this bitmap font
EMOJI_RANGES = (range(0x2600, 0x27C0), range(0x1F300, 0x1FB00))
SKIPPED_NAME_PREFIXES = ("EMOJI MODIFIER", "REGIONAL INDICATOR", "EMOJI COMPONENT")
GLYPH_SIDE = 64  # cached glyph resolution; augmented images are drawn from it
THUMB_SIDE = 16  # the evaluation compares 16x16 Lab thumbnails

# Backgrounds named in captions; white is the default and goes unnamed.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (250, 225, 50),
    "green": (50, 170, 60),
    "blue": (40, 90, 220),
    "purple": (130, 60, 180),
    "pink": (245, 150, 200),
    "gray": (128, 128, 128),
}
WHITE_SHARE = 0.5  # half of the training images keep the plain caption on white
NAME_SHARE = 0.5  # of the augmented images of a glyph with aliases, this share use the name
SCALE_RANGE = (0.55, 1.0)  # glyph size in the frame (the canonical render is 0.8)
OFFSET_SHARE = 1.0  # how far off centre a glyph may sit, as a share of the room it has

# Everyday words for one glyph that the rules below cannot find (a word shared by several names,
# such as "tree") -- what a newcomer types first.
EVERYDAY_WORDS: dict[str, str] = {
    "tree": "DECIDUOUS TREE",
    "heart": "HEAVY BLACK HEART",
    "car": "AUTOMOBILE",
    "apple": "RED APPLE",
    "wave": "WATER WAVE",
    "star": "WHITE MEDIUM STAR",
    "flower": "HIBISCUS",
    "sun": "BLACK SUN WITH RAYS",
    "moon": "CRESCENT MOON",
    "snow": "SNOWFLAKE",
    "boat": "SAILBOAT",
}

# Always in the subset: prompts people try first (and the ones the docs use).
FAVOURITES = (
    "FIRE",
    "RED APPLE",
    "DECIDUOUS TREE",
    "EVERGREEN TREE",
    "SUN WITH FACE",
    "CLOUD",
    "SNOWMAN",
    "HOUSE BUILDING",
    "ROCKET",
    "CAT FACE",
    "DOG FACE",
    "FISH",
    "BANANA",
    "GRAPES",
    "SUNFLOWER",
    "RAINBOW",
    "HEAVY BLACK HEART",
    "AUTOMOBILE",
    "MOUNTAIN",
    "WATER WAVE",
)


@dataclass
class Glyph:
    codepoint: int
    caption: str  # the Unicode name, lower-cased: "deciduous tree"
    rgba: np.ndarray  # GLYPH_SIDE x GLYPH_SIDE x 4 uint8, glyph centred, transparent around it
    aliases: tuple[str, ...] = ()  # other captions people type: ("fox",) for "fox face"


def load_font() -> ImageFont.FreeTypeFont:
    if not FONT_PATH.exists():
        raise SystemExit(f"{FONT_PATH} is missing: apt-get install fonts-noto-color-emoji")
    return ImageFont.truetype(str(FONT_PATH), FONT_SIZE)


def render_codepoint(font: ImageFont.FreeTypeFont, codepoint: int) -> np.ndarray | None:
    """The glyph as a square RGBA array, trimmed to its ink and centred; None if the font lacks it."""
    canvas = Image.new("RGBA", (180, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), chr(codepoint), font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    ink = canvas.crop(box)
    side = max(ink.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    square = square.resize((GLYPH_SIDE, GLYPH_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8).copy()


def all_glyphs(font: ImageFont.FreeTypeFont) -> list[Glyph]:
    """Every single-code-point emoji the font draws, skipping modifiers and flag letters."""
    glyphs = []
    for block in EMOJI_RANGES:
        for codepoint in block:
            try:
                name = unicodedata.name(chr(codepoint))
            except ValueError:
                continue
            if name.startswith(SKIPPED_NAME_PREFIXES):
                continue
            rgba = render_codepoint(font, codepoint)
            if rgba is not None:
                glyphs.append(Glyph(codepoint, name.lower(), rgba))
    return glyphs


def cldr_short_names(path: Path = CLDR_ANNOTATIONS) -> dict[int, str]:
    """CLDR's English short name (``type="tts"``) of each single-code-point emoji; {} without CLDR."""
    if not path.is_file():
        return {}
    names: dict[int, str] = {}
    for node in ElementTree.parse(path).getroot().iter("annotation"):
        text = (node.text or "").strip().lower()
        point = (node.get("cp") or "").replace("\ufe0f", "")
        if node.get("type") == "tts" and len(point) == 1 and text:
            names[ord(point)] = text
    return names


def _plain(text: str) -> str:
    """A caption as people type it: lower case, no punctuation but spaces ("snow-capped" -> "snow capped")."""
    text = text.lower().replace("\u2019", "").replace("'", "")
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def add_aliases(glyphs: list[Glyph], short_names: dict[int, str]) -> list[Glyph]:
    """Give each glyph the other captions people type, none of which names another glyph.

    Candidates: the CLDR short name ("fox" for FOX FACE, "red heart" for HEAVY BLACK HEART), the
    name without a trailing " face" ("nauseated" for NAUSEATED FACE), and EVERYDAY_WORDS ("tree" -> DECIDUOUS TREE).  A candidate that is some
    other glyph's name or candidate is dropped, so every caption means one picture."""
    names = {glyph.caption for glyph in glyphs}
    candidates: dict[str, list[int]] = {}
    per_glyph: list[list[str]] = []
    by_name = {glyph.caption.upper(): k for k, glyph in enumerate(glyphs)}
    everyday = {by_name[name]: word for word, name in EVERYDAY_WORDS.items() if name in by_name}
    for k, glyph in enumerate(glyphs):
        own = []
        short = _plain(short_names.get(glyph.codepoint, ""))
        if short:
            own.append(short)
        for base in (glyph.caption, short):
            if base.endswith(" face") and len(base.split()) > 1:
                own.append(base[: -len(" face")])
        if k in everyday:
            own.append(everyday[k])
        own = [a for a in dict.fromkeys(own) if a and a != glyph.caption]
        per_glyph.append(own)
        for alias in own:
            candidates.setdefault(alias, []).append(k)
    out = []
    for k, glyph in enumerate(glyphs):
        keep = tuple(a for a in per_glyph[k]
                     if a not in names and (len(candidates[a]) == 1 or everyday.get(k) == a))
        out.append(Glyph(glyph.codepoint, glyph.caption, glyph.rgba, keep))
    return out


# --- colour maths shared with evaluate.py and the tests -----------------------------------------


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of sRGB values in 0..255; distances in Lab roughly follow what eyes see."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def lab_thumbnail(image: Image.Image | np.ndarray) -> np.ndarray:
    """16 x 16 x 3 Lab thumbnail (box-filtered) of an RGB image of any size."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    small = image.convert("RGB").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    return srgb_to_lab(np.asarray(small))


def lab_distances(thumb: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Mean per-pixel Lab distance (Delta E 76) from one thumbnail to each of N references."""
    return np.sqrt(((references - thumb[None]) ** 2).sum(-1)).mean(axis=(1, 2))


# --- composing training images ---------------------------------------------------------------------


def compose(
    rgba: np.ndarray, side: int, scale: float, offset: tuple[float, float], background: tuple[int, int, int]
) -> np.ndarray:
    """The glyph scaled to ``scale`` of the frame, shifted by ``offset`` (fractions of the frame)."""
    glyph_side = max(4, round(side * scale))
    glyph = Image.fromarray(rgba).resize((glyph_side, glyph_side), Image.Resampling.LANCZOS)
    frame = Image.new("RGBA", (side, side), background + (255,))
    left = round((side - glyph_side) / 2 + offset[0] * side)
    top = round((side - glyph_side) / 2 + offset[1] * side)
    frame.alpha_composite(glyph, (left, top))
    return np.asarray(frame.convert("RGB"), dtype=np.uint8).copy()


def canonical(rgba: np.ndarray, side: int) -> np.ndarray:
    """The reference rendering: centred, 80% of the frame, on white (caption = plain name)."""
    return compose(rgba, side, 0.8, (0.0, 0.0), BACKGROUNDS["white"])


def make_sketch(image: np.ndarray, blobs: int = 6) -> np.ndarray:
    """A crude stand-in for a hand sketch: colour blobs (block average), blurred, posterised."""
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    side = picture.size
    blocky = picture.resize((blobs, blobs), Image.Resampling.BOX).resize(side, Image.Resampling.NEAREST)
    soft = blocky.filter(ImageFilter.GaussianBlur(radius=side[0] / 24))
    levels = np.round(np.asarray(soft, dtype=np.float64) / 85.0) * 85.0  # 4 levels, white stays white
    return levels.astype(np.uint8)


def caption_for(name: str, background: str) -> str:
    return name if background == "white" else f"{name} on a {background} background"


def pick_subset(glyphs: list[Glyph], count: int, seed: int, min_distance: float) -> list[Glyph]:
    """Favourites first, then a seeded random order, skipping near-copies of glyphs already taken.

    Many emoji are near twins at 16x16 (dozens of yellow faces); a subset without them lets the
    evaluation measure whether the model follows the words rather than how alike the glyphs are.
    """
    rng = np.random.default_rng(seed)
    by_name = {glyph.caption.upper(): glyph for glyph in glyphs}
    ordered = [by_name[name] for name in FAVOURITES if name in by_name]
    rest = [glyph for glyph in glyphs if glyph.caption.upper() not in FAVOURITES]
    ordered += [rest[i] for i in rng.permutation(len(rest))]
    chosen: list[Glyph] = []
    thumbs: list[np.ndarray] = []
    for glyph in ordered:
        thumb = lab_thumbnail(canonical(glyph.rgba, 32))
        if thumbs and lab_distances(thumb, np.stack(thumbs)).min() < min_distance:
            continue
        chosen.append(glyph)
        thumbs.append(thumb)
        if len(chosen) == count:
            break
    return chosen


def build(count: int, variants: int, side: int, seed: int, min_distance: float, *,
          aliases: bool = False, white_share: float = WHITE_SHARE,
          scale_range: tuple[float, float] = SCALE_RANGE, offset_share: float = OFFSET_SHARE) -> Path:
    """Render, pick and augment; save everything the training and evaluation need in one npz.

    ``count`` 0 keeps every glyph the font draws (in code-point order); otherwise a diverse subset
    (pick_subset).  Each glyph gives ``variants`` images: the canonical render with its name, then
    random sizes, positions and backgrounds, captioned with its name or (``aliases``) one of its
    aliases.  The defaults are the shipped demo model's recipe."""
    font = load_font()
    glyphs = all_glyphs(font)
    if aliases:
        glyphs = add_aliases(glyphs, cldr_short_names())
    if count:
        glyphs = pick_subset(glyphs, count, seed, min_distance)
    rng = np.random.default_rng(seed + 1)
    colour_names = [name for name in BACKGROUNDS if name != "white"]
    images, glyph_ids, captions = [], [], []
    for index, glyph in enumerate(glyphs):
        for variant in range(variants):
            if variant == 0:
                image, background, label = canonical(glyph.rgba, side), "white", glyph.caption
            else:
                background = "white" if rng.random() < white_share else str(rng.choice(colour_names))
                scale = float(rng.uniform(*scale_range))
                room = (1.0 - scale) / 2 * offset_share
                offset = (float(rng.uniform(-room, room)), float(rng.uniform(-room, room)))
                image = compose(glyph.rgba, side, scale, offset, BACKGROUNDS[background])
                label = glyph.caption
                if glyph.aliases and rng.random() >= NAME_SHARE:
                    label = glyph.aliases[int(rng.integers(len(glyph.aliases)))]
            images.append(image)
            glyph_ids.append(index)
            captions.append(caption_for(label, background))
    out = TRAIN_DIR / f"emoji_{side}px_{count or 'all'}.npz"
    TRAIN_DIR.mkdir(exist_ok=True)
    np.savez_compressed(
        out,
        images=np.stack(images),
        glyph_ids=np.array(glyph_ids, dtype=np.int32),
        captions=np.array(captions),
        names=np.array([glyph.caption for glyph in glyphs]),
        aliases=np.array([" | ".join(glyph.aliases) for glyph in glyphs]),
        codepoints=np.array([glyph.codepoint for glyph in glyphs], dtype=np.int32),
        glyph_rgba=np.stack([glyph.rgba for glyph in glyphs]),
        canonical=np.stack([canonical(glyph.rgba, side) for glyph in glyphs]),
    )
    return out


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """The augmentation options (shared with train.py); defaults: the shipped model's recipe."""
    parser.add_argument("--aliases", action="store_true",
                        help="caption half of the augmented images with CLDR short names etc.")
    parser.add_argument("--white-share", type=float, default=WHITE_SHARE)
    parser.add_argument("--scale-range", type=float, nargs=2, default=list(SCALE_RANGE))
    parser.add_argument("--offset-share", type=float, default=OFFSET_SHARE)


def recipe_options(args: argparse.Namespace) -> dict:
    return {"aliases": args.aliases, "white_share": args.white_share,
            "scale_range": tuple(args.scale_range), "offset_share": args.offset_share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glyphs", type=int, default=200, help="how many distinct emoji (0: all)")
    parser.add_argument("--variants", type=int, default=64, help="augmented images per emoji")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-distance", type=float, default=12.0, help="Lab distance between picks")
    add_recipe_options(parser)
    args = parser.parse_args()
    path = build(args.glyphs, args.variants, args.size, args.seed, args.min_distance,
                 **recipe_options(args))
    with np.load(path) as data:
        print(f"{path}: {len(data['images'])} images of {len(data['names'])} emoji")


if __name__ == "__main__":
    main()
