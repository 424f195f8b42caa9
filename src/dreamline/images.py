"""Init images and masks: everything between a file on disk and the pixels the generator sees.

Why a module of its own: every rule here is a user-visible decision (dream-cli.md sections 3 and 4)
and each one has bitten someone.  Reading files (regular files only, EXIF-upright, RGB with the
colour under transparency kept) is ``image_files``; sizes (flooring to the model's multiple, the
``--fit`` bounding box, the -W/-H limit) are ``image_sizes``; this module holds the masks and the
public API.  Nothing here imports torch: the result is a PIL image and a numpy mask, and the
generator converts them.

Mask convention everywhere: a float32 H x W array, 1.0 = keep the init pixel, 0.0 = repaint.
Masks are binary.  A pixel is repainted when

* the init image (or the ``-M`` file's alpha) is not fully opaque there: alpha < 255, so the soft
  edge an eraser leaves is repainted too (the reference's rule);
* a ``-M`` file without alpha is darker than mid-grey there: gray < 128, black = repaint,
  white = keep (tolerant of JPEG noise and anti-aliased brush edges).

When the image is resized, the mask is resized with it and a pixel is kept only where every source
pixel it blends was kept, so a kept pixel never mixes in colour from the repainted region.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from dreamline.errors import ImageError
from dreamline.image_files import alpha_of, gray_of, read_upright, to_rgb
from dreamline.image_sizes import size_text, size_warnings, target_size

DEFAULT_SMALL_SIDE = 512
DEFAULT_LARGE_AREA = 512 * 512
GRAY_KEEP_THRESHOLD = 128  # L/RGB masks: gray >= this keeps the pixel


@dataclass(frozen=True)
class InitImage:
    """An init image ready for img2img: final size, RGB, with its optional binary mask."""

    image: Image.Image
    mask: np.ndarray | None
    original_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the generator must use."""
        return self.image.size


# --------------------------------------------------------------------------------------------
# masks


def _resize_mask(keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a binary keep mask; a pixel stays kept only if everything it blends was kept."""
    if keep.shape == (size[1], size[0]):
        return keep.astype(np.float32)
    as_float = Image.fromarray(keep.astype(np.float32), mode="F")
    resized = np.asarray(as_float.resize(size, Image.Resampling.BILINEAR))
    return (resized >= 1.0 - 1e-4).astype(np.float32)


def _mask_from_file(
    mask_path: str | os.PathLike[str], notes: list[str]
) -> tuple[np.ndarray, tuple[int, int]]:
    """A ``-M`` file as a binary keep mask at its own (upright) size, and that size."""
    shown = str(mask_path)
    raw, _frames = read_upright(mask_path, "mask", notes)
    alpha = alpha_of(raw)
    if alpha is not None and bool((alpha < 255).any()):
        notes.append(f"mask from the transparency of '{shown}'")
        return alpha == 255, raw.size
    try:
        gray = gray_of(raw)
    except ValueError:
        raise ImageError(
            f"cannot read mask '{shown}': its colour mode {raw.mode} cannot be converted to "
            "grayscale (save it as an L, RGB or RGBA PNG)"
        ) from None
    notes.append(f"mask from the gray levels of '{shown}' (black = repaint, white = keep)")
    return gray >= GRAY_KEEP_THRESHOLD, raw.size


def _erased_colour_warning(image: Image.Image, shown: str) -> str | None:
    """Warn when every fully transparent pixel is pure black or white: the colours were erased."""
    alpha = alpha_of(image)
    if alpha is None:
        return None
    hidden = alpha == 0
    if not hidden.any():
        return None
    rgb = np.asarray(to_rgb(image))[hidden]
    black = (rgb == 0).all(axis=1)
    white = (rgb == 255).all(axis=1)
    if not (black | white).all():
        return None
    return (
        f"warning: the colours under the transparent region of '{shown}' were erased "
        "(all black or white); inpainting works best when the editor keeps them "
        "(e.g. GIMP: 'save color values from transparent pixels')"
    )


def _finish_mask(
    keep: np.ndarray, source: str, inverted: bool, notes: list[str]
) -> np.ndarray | None:
    """Drop a mask that keeps or repaints everything, saying why, and report its coverage.

    Keeping everything leaves inpainting nothing to do, and repainting everything is plain
    img2img; either way the generator runs plain img2img, and the note says so.
    """
    if keep.all():
        hint = "" if inverted else " (did you mean --invert_mask?)"
        notes.append(f"{source} keeps every pixel: nothing to repaint; running plain img2img{hint}")
        return None
    if not keep.any():
        notes.append(f"{source} repaints every pixel: nothing is kept; running plain img2img")
        return None
    repainted = 100.0 * float((keep == 0).mean())
    notes.append(f"{source}: {repainted:.0f}% of the image will be repainted")
    return keep


# --------------------------------------------------------------------------------------------
# public API


def load_init_image(
    path: str | os.PathLike[str],
    *,
    fit_box: tuple[int, int] | None,
    multiple: int,
    mask_path: str | os.PathLike[str] | None = None,
    invert_mask: bool = False,
    small_side: int = DEFAULT_SMALL_SIDE,
    large_area: int = DEFAULT_LARGE_AREA,
) -> InitImage:
    """Read an init image (and mask) and bring it to the size the generator will use.

    ``fit_box`` is ``(W, H)`` for ``--fit``, else None (the image keeps its own size, floored).
    ``multiple`` is the model's size multiple (64 for SD 1.x).  ``small_side`` / ``large_area``
    set the size warnings; small built-in models pass their own default size.
    Raises ImageError (one line, naming the file) for anything the user must fix.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    shown = str(path)
    notes: list[str] = []
    raw, frames = read_upright(path, "init image", notes)
    if frames > 1:
        notes.append(f"'{shown}' has {frames} frames; using the first")
    original = raw.size
    target = target_size(original, fit_box, multiple, shown, notes)

    try:
        rgb = to_rgb(raw)
    except ValueError:
        raise ImageError(
            f"cannot read init image '{shown}': its colour mode {raw.mode} cannot be converted "
            "to RGB (save it as an RGB or RGBA PNG)"
        ) from None
    alpha = alpha_of(raw)
    transparent = alpha is not None and bool((alpha < 255).any())
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)

    keep: np.ndarray | None = None
    source = ""
    if transparent:
        erased = _erased_colour_warning(raw, shown)
        if erased:
            notes.append(erased)
    if mask_path is not None:
        if transparent:
            notes.append(f"'{shown}' has transparency, but the mask '{mask_path}' is used instead")
        keep_file, mask_size = _mask_from_file(mask_path, notes)
        if mask_size != original:
            if mask_size[0] * original[1] != mask_size[1] * original[0]:
                notes.append(
                    f"warning: mask '{mask_path}' is {size_text(mask_size)} but the image is "
                    f"{size_text(original)}; the mask is stretched to the image"
                )
            else:
                notes.append(
                    f"mask '{mask_path}' {size_text(mask_size)} resized with the image"
                )
        keep = _resize_mask(keep_file, target)
        source = f"mask '{mask_path}'"
    elif alpha is not None and transparent:
        keep = _resize_mask(alpha == 255, target)
        source = f"transparency of '{shown}'"
    if keep is not None and invert_mask:
        keep = 1.0 - keep
        source = f"inverted {source}"
    elif invert_mask:
        notes.append(
            "warning: --invert_mask ignored: there is no mask (no -M and the image is opaque)"
        )
    mask = _finish_mask(keep, source, invert_mask, notes) if keep is not None else None
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=np.float32)

    notes.extend(size_warnings(target, small_side, large_area, fitted=fit_box is not None))
    return InitImage(image=rgb, mask=mask, original_size=original, notes=notes)


def paste_kept(result: Image.Image, init: InitImage) -> Image.Image:
    """Copy the kept pixels (mask == 1) from the init image, so they equal the input exactly.

    The VAE cannot reproduce pixels bit for bit; pasting back is what makes "kept" true.
    """
    if result.size != init.image.size:
        raise ValueError(
            f"result is {size_text(result.size)} but the init image is "
            f"{size_text(init.image.size)}"
        )
    result_rgb = result.convert("RGB")
    if init.mask is None:
        return result_rgb
    keep = (init.mask == 1.0)[..., None]
    merged = np.where(keep, np.asarray(init.image.convert("RGB")), np.asarray(result_rgb))
    return Image.fromarray(np.ascontiguousarray(merged, dtype=np.uint8), mode="RGB")


def mask_to_latent(mask: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a pixel mask (1 = keep) to latent size (H/factor x W/factor), still 1 = keep.

    A latent cell is kept only when every pixel it covers is kept (min-pooling): the cells at the
    edge of the repainted region are regenerated, and ``paste_kept`` restores the kept pixels.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    height, width = mask.shape
    if height % factor or width % factor:
        raise ValueError(f"mask {width}x{height} is not a multiple of the latent factor {factor}")
    cells = mask.reshape(height // factor, factor, width // factor, factor)
    return cells.min(axis=(1, 3)).astype(np.float32)
