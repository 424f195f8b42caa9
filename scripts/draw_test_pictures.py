#!/usr/bin/env python3
"""Draw the pictures the docs and tests use into test-pictures/, with Pillow only.

Why drawn rather than shipped: the reference's pictures are not ours to copy, and a script makes
the pictures reproducible (the same pixels every run: a fixed-seed wobble, no anti-aliasing, flat
colours, so the PNGs stay small).  Run it again after changing a picture and commit both.

    .venv/bin/python scripts/draw_test_pictures.py [output-folder]
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from collections.abc import Callable

from PIL import Image, ImageDraw

Point = tuple[float, float]

SKY = (150, 200, 245)
SUN = (250, 215, 60)
GRASS = (95, 170, 70)
DARK_GRASS = (60, 130, 50)
RIVER = (60, 110, 210)
TRUNK = (120, 75, 35)
CROWN = (40, 140, 45)
INK = (35, 35, 40)
PAPER = (245, 240, 225)
BRICK = (170, 70, 50)
MORTAR = (200, 180, 160)
HEARTH = (40, 30, 30)
LOG = (100, 60, 30)
FLAME_RED = (225, 60, 30)
FLAME_ORANGE = (245, 140, 30)
FLAME_YELLOW = (250, 220, 70)
WALL = (230, 200, 150)
ROOF = (180, 50, 40)
WINDOW = (120, 180, 230)
MOUNTAIN = (130, 120, 150)
SNOW = (250, 250, 250)


class Sketch:
    """A drawing surface at any size, addressed in 0..1 coordinates, with a shaky hand."""

    def __init__(self, width: int, height: int, background: tuple[int, int, int], seed: int):
        self.image = Image.new("RGB", (width, height), background)
        self.draw = ImageDraw.Draw(self.image)
        self.width = width
        self.height = height
        self.rng = random.Random(seed)
        self.pen = max(2, round(min(width, height) / 128))

    def _xy(self, point: Point) -> tuple[int, int]:
        return round(point[0] * self.width), round(point[1] * self.height)

    def _shake(self, amount: float) -> float:
        return (self.rng.random() - 0.5) * 2 * amount

    def wobble(
        self, points: list[Point], amount: float = 0.006, closed: bool = False
    ) -> list[Point]:
        """Subdivide a path and jitter it, so straight lines look drawn by hand."""
        path = points + [points[0]] if closed else points
        shaky: list[Point] = []
        for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):
            pieces = max(1, int(math.hypot(x1 - x0, y1 - y0) / 0.03))
            for i in range(pieces):
                t = i / pieces
                shaky.append((x0 + (x1 - x0) * t + self._shake(amount),
                              y0 + (y1 - y0) * t + self._shake(amount)))
        if not closed:
            shaky.append(path[-1])
        return shaky

    def shape(self, points: list[Point], fill: tuple[int, int, int], outline: bool = True) -> None:
        """A filled hand-drawn polygon with an ink outline."""
        shaky = self.wobble(points, closed=True)
        pixels = [self._xy(p) for p in shaky]
        self.draw.polygon(pixels, fill=fill)
        if outline:
            self.draw.line(pixels + [pixels[0]], fill=INK, width=self.pen, joint="curve")

    def blob(self, centre: Point, radius: float, fill: tuple[int, int, int],
             bumps: int = 0, outline: bool = True) -> None:
        """A roundish hand-drawn shape (a sun, a crown of leaves with ``bumps``)."""
        points = []
        for i in range(48):
            angle = 2 * math.pi * i / 48
            r = radius * (1 + (0.12 * abs(math.sin(angle * bumps / 2)) if bumps else 0))
            points.append((centre[0] + r * math.cos(angle) * self.height / self.width,
                           centre[1] + r * math.sin(angle)))
        self.shape(points, fill, outline)

    def line(self, points: list[Point], colour: tuple[int, int, int] = INK,
             width: int | None = None) -> None:
        pixels = [self._xy(p) for p in self.wobble(points)]
        self.draw.line(pixels, fill=colour, width=width or self.pen, joint="curve")


def wave(
    x0: float, x1: float, y: float, height: float, turns: float, phase: float = 0
) -> list[Point]:
    """Points along a gentle sine, for hills and river banks."""
    return [(x0 + (x1 - x0) * i / 40,
             y + height * math.sin(phase + turns * 2 * math.pi * i / 40)) for i in range(41)]


def tree_and_river(width: int, height: int) -> Image.Image:
    """A child's drawing: sky, sun, a green hill with a tree, a blue river winding across."""
    s = Sketch(width, height, SKY, seed=1)
    s.blob((0.85, 0.14), 0.07, SUN)
    for i in range(8):
        a = 2 * math.pi * i / 8
        s.line([(0.85 + 0.09 * math.cos(a) * height / width, 0.14 + 0.09 * math.sin(a)),
                (0.85 + 0.13 * math.cos(a) * height / width, 0.14 + 0.13 * math.sin(a))], SUN)
    s.shape([(-0.02, 1.02)] + wave(-0.02, 1.02, 0.55, 0.05, 0.6, 2.5) + [(1.02, 1.02)], GRASS)
    river_top = wave(-0.02, 1.02, 0.78, 0.04, 1.0)
    river_bottom = wave(1.02, -0.02, 0.88, 0.05, 1.0, 1.0)
    s.shape(river_top + river_bottom, RIVER)
    s.shape([(0.30, 0.66), (0.33, 0.40), (0.38, 0.40), (0.41, 0.66)], TRUNK)
    s.blob((0.355, 0.32), 0.16, CROWN, bumps=7)
    for x in (0.62, 0.70, 0.78, 0.12, 0.20):  # grass tufts
        s.line([(x, 0.70), (x + 0.01, 0.66), (x + 0.02, 0.70), (x + 0.03, 0.665)], DARK_GRASS)
    return s.image


def fire_drawing(width: int, height: int) -> Image.Image:
    """A hand-drawn fireplace: brick surround, dark hearth, logs and a crackling fire."""
    s = Sketch(width, height, PAPER, seed=2)
    s.shape([(0.08, 0.12), (0.92, 0.12), (0.92, 0.95), (0.08, 0.95)], BRICK)
    for row in range(9):  # mortar lines, a few bricks per row
        y = 0.12 + 0.0925 * row
        s.line([(0.09, y), (0.91, y)], MORTAR)
        offset = 0.07 if row % 2 else 0.0
        for col in range(6):
            x = 0.12 + offset + 0.14 * col
            if x < 0.9:
                s.line([(x, y), (x, y + 0.09)], MORTAR)
    s.shape([(0.04, 0.08), (0.96, 0.08), (0.96, 0.14), (0.04, 0.14)], LOG)  # mantel
    s.shape([(0.24, 0.95), (0.24, 0.48), (0.32, 0.36), (0.68, 0.36), (0.76, 0.48),
             (0.76, 0.95)], HEARTH)
    s.shape([(0.28, 0.76), (0.34, 0.68), (0.54, 0.72), (0.48, 0.81)], FLAME_RED)  # embers
    s.shape([(0.30, 0.86), (0.70, 0.78), (0.72, 0.84), (0.32, 0.92)], LOG)
    s.shape([(0.30, 0.78), (0.70, 0.86), (0.68, 0.92), (0.28, 0.84)], LOG)
    flames = [
        (FLAME_RED, [(0.30, 0.84), (0.34, 0.60), (0.40, 0.70), (0.44, 0.44), (0.50, 0.64),
                     (0.56, 0.40), (0.61, 0.62), (0.66, 0.52), (0.70, 0.84)]),
        (FLAME_ORANGE, [(0.35, 0.84), (0.39, 0.66), (0.44, 0.72), (0.50, 0.52), (0.55, 0.70),
                        (0.60, 0.58), (0.65, 0.84)]),
        (FLAME_YELLOW, [(0.41, 0.84), (0.45, 0.72), (0.50, 0.64), (0.54, 0.74), (0.59, 0.84)]),
    ]
    for colour, points in flames:
        s.shape(points, colour)
    return s.image


def big_sketch(width: int, height: int) -> Image.Image:
    """A wide landscape sketch (mountains, a house, a tree, a river): the --fit example."""
    s = Sketch(width, height, SKY, seed=3)
    s.blob((0.12, 0.15), 0.07, SUN)
    s.shape([(0.0, 0.6), (0.18, 0.22), (0.34, 0.6)], MOUNTAIN)
    s.shape([(0.13, 0.32), (0.18, 0.22), (0.23, 0.32), (0.18, 0.30)], SNOW)
    s.shape([(0.22, 0.6), (0.45, 0.15), (0.68, 0.6)], MOUNTAIN)
    s.shape([(0.39, 0.27), (0.45, 0.15), (0.51, 0.27), (0.45, 0.25)], SNOW)
    s.shape([(-0.02, 1.02)] + wave(-0.02, 1.02, 0.58, 0.03, 1.5) + [(1.02, 1.02)], GRASS)
    s.shape(wave(-0.02, 1.02, 0.84, 0.03, 1.2) + wave(1.02, -0.02, 0.93, 0.03, 1.2, 0.8), RIVER)
    s.shape([(0.62, 0.74), (0.62, 0.52), (0.80, 0.52), (0.80, 0.74)], WALL)
    s.shape([(0.59, 0.53), (0.71, 0.38), (0.83, 0.53)], ROOF)
    s.shape([(0.69, 0.74), (0.69, 0.63), (0.73, 0.63), (0.73, 0.74)], TRUNK)  # door
    s.shape([(0.64, 0.56), (0.67, 0.56), (0.67, 0.61), (0.64, 0.61)], WINDOW)
    s.shape([(0.75, 0.56), (0.78, 0.56), (0.78, 0.61), (0.75, 0.61)], WINDOW)
    s.shape([(0.85, 0.76), (0.86, 0.55), (0.88, 0.55), (0.89, 0.76)], TRUNK)
    s.blob((0.87, 0.43), 0.14, CROWN, bumps=7)
    return s.image


def hole_mask(width: int, height: int) -> Image.Image:
    """An L mask: white = keep, a black circle over the tree's crown = repaint."""
    mask = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = 0.355 * width, 0.32 * height, 0.2 * min(width, height)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=0)
    return mask


def inpaint_hole(width: int, height: int) -> Image.Image:
    """The tree sketch with a transparent circle over the crown; the colours under it are kept."""
    picture = tree_and_river(width, height).convert("RGBA")
    picture.putalpha(hole_mask(width, height))
    return picture


def small(draw: Callable[[int, int], Image.Image], size: int) -> Image.Image:
    """A small version (for the built-in demo model): drawn at 512, then reduced."""
    return draw(512, 512).resize((size, size), Image.Resampling.BOX)


def small_mask(size: int) -> Image.Image:
    """A small mask kept strictly black/white (thresholded after reducing)."""
    reduced = hole_mask(512, 512).resize((size, size), Image.Resampling.BOX)
    return reduced.point(lambda value: 255 if value >= 128 else 0)


def small_hole(size: int) -> Image.Image:
    """The small inpainting picture: its hole is exactly the small mask."""
    picture = small(tree_and_river, size).convert("RGBA")
    picture.putalpha(small_mask(size))
    return picture


PICTURES: dict[str, Callable[[], Image.Image]] = {
    "tree-and-river-sketch.png": lambda: tree_and_river(512, 512),
    "fire-drawing.png": lambda: fire_drawing(512, 512),
    "big-sketch.png": lambda: big_sketch(1536, 1024),
    "inpaint-hole.png": lambda: inpaint_hole(512, 512),
    "mask.png": lambda: hole_mask(512, 512),
    "tree-and-river-sketch-64.png": lambda: small(tree_and_river, 64),
    "fire-drawing-64.png": lambda: small(fire_drawing, 64),
    "inpaint-hole-64.png": lambda: small_hole(64),
    "mask-64.png": lambda: small_mask(64),
}


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "test-pictures"
    out = Path(argv[1]) if len(argv) > 1 else default
    out.mkdir(parents=True, exist_ok=True)
    for name, make in PICTURES.items():
        target = out / name
        make().save(target, optimize=True)
        print(f"{target} ({target.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
