"""Pictures made of pictures: the ``-g`` grid and the ``--save_intermediates`` strip."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

STRIP_MIN_CELL = 96  # strip cells smaller than this are blown up (nearest) to be seen


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) for ``count`` images: rows = floor(sqrt(n)), columns = ceil(n / rows).

    Raises ValueError for fewer than one image.
    """
    if count < 1:
        raise ValueError(f"a grid needs at least one image, got {count}")
    rows = math.isqrt(count)
    return rows, math.ceil(count / rows)


def _cell_size(images: Sequence[Image.Image]) -> tuple[int, int]:
    """The largest width and height: images of different sizes are padded, never cropped."""
    return max(im.width for im in images), max(im.height for im in images)


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """All images in order, row by row, on black (like the reference's grid); RGB."""
    rows, columns = grid_shape(len(images))
    cell_width, cell_height = _cell_size(images)
    grid = Image.new("RGB", (cell_width * columns, cell_height * rows))
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid.paste(image.convert("RGB"), (column * cell_width, row * cell_height))
    return grid


def strip_zoom(cell_height: int) -> int:
    """Whole-number zoom that makes a strip cell at least STRIP_MIN_CELL pixels high (small
    models draw 32-pixel images; a strip of those would be unreadable)."""
    return max(1, -(-STRIP_MIN_CELL // cell_height))


def make_strip(images: Sequence[Image.Image], labels: Sequence[str] | None = None) -> Image.Image:
    """Images side by side (the step pictures of IMG2IMG.md), small ones blown up by
    ``strip_zoom``, each optionally labelled in a band underneath that never covers a picture.

    Raises ValueError for no images or a label count that differs from the image count.
    """
    if not images:
        raise ValueError("a strip needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    cell_width, cell_height = _cell_size(images)
    zoom = strip_zoom(cell_height)
    width, height = cell_width * zoom, cell_height * zoom
    font = ImageFont.load_default(size=max(10, min(height // 10, 18)))
    band = 0 if labels is None else int(font.getbbox("Ag")[3]) + 6
    strip = Image.new("RGB", (width * len(images), height + band), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for index, image in enumerate(images):
        left = index * width
        strip.paste(image.convert("RGB").resize((image.width * zoom, image.height * zoom),
                                                Image.Resampling.NEAREST), (left, 0))
        if labels is not None and labels[index]:
            text = _fit_text(draw, labels[index], font, width - 6)
            draw.text((left + 3, height + 3), text, fill=(0, 0, 0), font=font)
    return strip


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, room: int) -> str:
    """``text``, shortened with an ellipsis until it fits in ``room`` pixels."""
    shown = text
    while shown and draw.textlength(shown, font=font) > room:
        shown = shown[:-1]
    return shown if shown == text else (shown[:-1] + "…" if len(shown) > 1 else "")
