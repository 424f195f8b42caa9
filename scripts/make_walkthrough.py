"""Run docs/walkthrough.txt through the real CLI and assemble the README's pictures.

The demo model draws 32x32 images, so every picture is enlarged (nearest neighbour) to be seen.
Writes docs/walkthrough/*.png; prints the commands that made them.

    .venv/bin/python scripts/make_walkthrough.py [launch options, e.g. --model PATH]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
LINES = ROOT / "docs" / "walkthrough.txt"
OUT = ROOT / "docs" / "walkthrough"
ZOOM = 4


def enlarge(image: Image.Image, zoom: int = ZOOM) -> Image.Image:
    return image.resize((image.width * zoom, image.height * zoom), Image.Resampling.NEAREST)


def labelled_row(cells: list[tuple[str, Image.Image]], cell: int = 32 * ZOOM) -> Image.Image:
    """Pictures side by side, each scaled to ``cell`` pixels high, with a caption under it."""
    caption = 14
    scaled = [(text, image.resize((cell * image.width // image.height, cell),
                                  Image.Resampling.NEAREST)) for text, image in cells]
    width = sum(image.width for _, image in scaled) + 4 * (len(scaled) - 1)
    row = Image.new("RGB", (width, cell + caption), "white")
    draw = ImageDraw.Draw(row)
    x = 0
    for text, image in scaled:
        row.paste(image, (x, 0))
        draw.text((x + 2, cell + 1), text, fill="black")
        x += image.width + 4
    return row


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp)
        run = subprocess.run([str(Path(sys.executable).with_name("dreamline")), "--from_file",
                              str(LINES), "-o", str(outdir), *sys.argv[1:]], cwd=ROOT, text=True,
                             capture_output=True)
        print(run.stdout)
        if run.returncode != 0:
            raise SystemExit(f"walkthrough failed:\n{run.stderr}")
        images = sorted(outdir.glob("[0-9]*.png"))
        by_prefix: dict[int, list[Path]] = {}
        for path in images:
            by_prefix.setdefault(int(path.name.split(".")[0]), []).append(path)
        OUT.mkdir(parents=True, exist_ok=True)
        first = lambda prefix: Image.open(by_prefix[prefix][0]).convert("RGB")  # noqa: E731
        drawing = Image.open(ROOT / "test-pictures" / "fire-drawing.png").convert("RGB")
        tree = Image.open(ROOT / "test-pictures" / "tree-and-river-sketch.png").convert("RGB")
        big = Image.open(ROOT / "test-pictures" / "big-sketch.png").convert("RGB")
        labelled_row([("fire-drawing.png", drawing), ("txt2img", first(1)),
                      ("-f 0.7 -s10", first(2)), ("-f 0.4 -s10", first(3)),
                      ("-f 0.7 -s30", first(4)), ("-f 0.4 -s50", first(5))]
                     ).save(OUT / "fire.png")
        for prefix, name in ((2, "strip-0.7.png"), (3, "strip-0.4.png")):
            strip = next((outdir / "intermediates").glob(f"{prefix:06d}.*/strip.png"))
            Image.open(strip).convert("RGB").save(OUT / name)  # strips are blown up already
        labelled_row([("sketch", tree), ("-f 0.85", first(6)), ("-f 0.5", first(7)),
                      ("big-sketch --fit", big), ("-f 0.75", first(8))]).save(OUT / "tree.png")
        grid = next(path for path in by_prefix[9] if ".grid." in path.name)
        enlarge(Image.open(grid).convert("RGB")).save(OUT / "variations.png")
        hole = Image.open(ROOT / "test-pictures" / "inpaint-hole.png").convert("RGBA")
        shown = Image.new("RGBA", hole.size, (255, 0, 255, 255))  # magenta marks the hole
        shown.alpha_composite(hole)
        labelled_row([("hole (magenta)", shown.convert("RGB")),
                      ("inpainted", first(10))]).save(OUT / "inpaint.png")
    print(f"pictures in {OUT}")


if __name__ == "__main__":
    main()
