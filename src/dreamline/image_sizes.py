"""Init image sizes: flooring to the model's multiple, the ``--fit`` box, and the limits.

Sizes are floored to the model's multiple because the VAE and UNet need it; ``--fit`` is a true
bounding box so the result never exceeds ``-W`` x ``-H``; without ``--fit`` an image larger than
the prompt line's -W/-H limit (request.MAX_SIDE) is refused, so every printed command runs.
"""

from __future__ import annotations

from collections.abc import Callable

from dreamline.errors import ImageError
from dreamline.request import MAX_SIDE, RequestError

def floor_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """Both sides floored to a multiple of ``multiple`` (may give 0: the caller decides)."""
    return width - width % multiple, height - height % multiple


def fit_size(size: tuple[int, int], box: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio inside ``box``, floored to ``multiple``.

    Integer arithmetic, so an exact fit (900x600 in 600x400) never loses a pixel to rounding.
    Images smaller than the box are scaled up to touch it; that is what a bounding box means.
    """
    width, height = size
    box_w, box_h = box
    if box_w * height <= box_h * width:  # width is the binding side
        fitted = (box_w, height * box_w // width)
    else:
        fitted = (width * box_h // height, box_h)
    return floor_size(fitted[0], fitted[1], multiple)


def describe_change(before: tuple[int, int], after: tuple[int, int]) -> str:
    """'scaled up', 'scaled down' or 'unchanged', by area."""
    if before == after:
        return "unchanged"
    return "scaled up" if after[0] * after[1] > before[0] * before[1] else "scaled down"


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def target_size(
    original: tuple[int, int],
    fit_box: tuple[int, int] | None,
    multiple: int,
    shown: str,
    notes: list[str],
) -> tuple[int, int]:
    """The size the generator will use, with a note saying how it was reached."""
    if fit_box is None:
        target = floor_size(original[0], original[1], multiple)
        if target != original and 0 not in target:
            notes.append(
                f"size {size_text(original)} floored to {size_text(target)} "
                f"(multiples of {multiple})"
            )
    else:
        if fit_box[0] < 1 or fit_box[1] < 1:
            raise ImageError(
                f"--fit box {size_text(fit_box)}: width and height must be at least 1"
            )
        target = fit_size(original, fit_box, multiple)
        if 0 not in target:
            notes.append(
                f"fit {size_text(original)} -> {size_text(target)} "
                f"(box {size_text(fit_box)}), {describe_change(original, target)}"
            )
    if 0 in target:
        if fit_box is None:
            what = f"init image '{shown}' is {size_text(original)}"
            hint = "; add --fit to scale it into the -W x -H box"
        else:
            fitted = fit_size(original, fit_box, 1)
            what = (
                f"init image '{shown}' ({size_text(original)}) fitted into "
                f"{size_text(fit_box)} is {size_text(fitted)}"
            )
            hint = ""
        raise ImageError(
            f"{what}: too small; both sides must be at least {multiple} pixels "
            f"(the model works in multiples of {multiple}){hint}"
        )
    if max(target) > MAX_SIDE:  # only without --fit: a -W/-H box is at most MAX_SIDE
        raise ImageError(
            f"init image '{shown}' is {size_text(original)} (it would run at "
            f"{size_text(target)}): larger than {MAX_SIDE} pixels on a side, the most "
            f"-W/-H accept; add --fit to scale it into the -W x -H box"
        )
    return target


def size_warnings(
    size: tuple[int, int], small_side: int, large_area: int, fitted: bool
) -> list[str]:
    """The reference's two size warnings, for the size actually used."""
    width, height = size
    found = []
    if width < small_side and height < small_side:
        advice = "use a larger -W/-H" if fitted else "try --fit with -W/-H"
        found.append(
            f"warning: {size_text(size)} is small: img2img works poorly below "
            f"{small_side}x{small_side}; {advice}"
        )
    if width * height > large_area:
        advice = "a smaller -W/-H" if fitted else "--fit with -W/-H"
        found.append(
            f"warning: {size_text(size)} is larger than the model's default area "
            f"({large_area} pixels); if you run out of memory, use {advice}"
        )
    return found


def floor_side(name: str, value: int, multiple: int, report: Callable[[str], None]) -> int:
    """Floor a txt2img side (pixels) to the model's multiple, saying so through ``report``
    when it changed.  Raises RequestError when nothing is left (a side below ``multiple``)."""
    floored = value // multiple * multiple
    if floored == 0:
        raise RequestError(f"{name}: {value} is out of range; expected a size in pixels from "
                           f"{multiple} to {MAX_SIDE} (a multiple of {multiple} for this model)")
    if floored != value:
        report(f"{name} {value} floored to {floored}, a multiple of {multiple}")
    return floored
