"""Init images and masks: everything between a file on disk and the pixels the generator sees.

Why a module of its own: every rule here is a user-visible decision (dream-cli.md sections 3 and 4)
and each one has bitten someone.  Files are EXIF-rotated because phones store portraits sideways;
transparent pixels keep their colour because inpainting starts from it; sizes are floored to the
model's multiple because the VAE and UNet need it; ``--fit`` is a true bounding box so the result
never exceeds ``-W`` x ``-H``.  Nothing here imports torch: the result is a PIL image and a numpy
mask, and the generator converts them.

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
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dreamline.errors import ImageError
from dreamline.request import MAX_SIDE

DEFAULT_SMALL_SIDE = 512
DEFAULT_LARGE_AREA = 512 * 512
GRAY_KEEP_THRESHOLD = 128  # L/RGB masks: gray >= this keeps the pixel
EXPECTED_FORMATS = "expected PNG, JPEG, WebP, BMP, GIF or TIFF"


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
# reading files


def _open_image(path: str | os.PathLike[str], what: str) -> tuple[Image.Image, int]:
    """Open and fully decode an image file (first frame), and its frame count.

    Every way a file can fail becomes one ImageError line naming it.
    """
    shown = str(path)
    file_path = Path(path).expanduser()
    prefix = f"cannot read {what} '{shown}'"
    try:
        mode = os.stat(file_path).st_mode
    except FileNotFoundError:
        raise ImageError(f"{prefix}: no such file") from None
    except PermissionError:
        raise ImageError(f"{prefix}: permission denied") from None
    except OSError as error:
        raise ImageError(f"{prefix}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise ImageError(f"{prefix}: it is a directory ({EXPECTED_FORMATS} file)")
    if not stat.S_ISREG(mode):  # a FIFO would block forever, /dev/zero never ends
        raise ImageError(f"{prefix}: not a regular file (a device, pipe or socket; "
                         f"{EXPECTED_FORMATS} file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file_path) as opened:
                opened.load()
                image = opened.copy()
                frames = int(getattr(opened, "n_frames", 1))
    except FileNotFoundError:
        raise ImageError(f"{prefix}: no such file") from None
    except PermissionError:
        raise ImageError(f"{prefix}: permission denied") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{prefix}: the image is too large to load safely") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{prefix}: not an image file ({EXPECTED_FORMATS})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{prefix}: damaged or unsupported image ({detail})") from None
    return image, frames


EXIF_ORIENTATION = 0x0112


def _exif_upright(image: Image.Image, notes: list[str], shown: str) -> Image.Image:
    """Apply the EXIF orientation, so the picture is upright the way viewers show it.

    Phones store portraits sideways with an orientation tag; ignoring it would feed the model a
    picture lying on its side.
    """
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        if orientation in (1, None):
            return image
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        notes.append(f"warning: could not read the EXIF orientation of '{shown}'; used as stored")
        return image
    if upright is None or orientation not in range(2, 9):
        return image
    notes.append(f"'{shown}' turned upright (EXIF orientation {orientation})")
    return upright


def _read_upright(
    path: str | os.PathLike[str], what: str, notes: list[str]
) -> tuple[Image.Image, int]:
    """Open a file and turn it upright, with Pillow's own warnings (damaged EXIF, ...) turned
    into one note instead of raw library lines; returns the image and its frame count."""
    shown = str(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opened, frames = _open_image(path, what)
        upright = _exif_upright(opened, notes, shown)
    messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    if messages:
        detail = "; ".join(message.rstrip(". ") for message in messages[:2])
        notes.append(f"warning: {what} '{shown}' has damaged metadata ({detail}); "
                     "its pixels are used as read")
    return upright, frames


def _alpha_of(image: Image.Image) -> np.ndarray | None:
    """The alpha channel as uint8 H x W (alpha, palette or PNG tRNS), or None if there is none.

    An alpha channel that is 255 everywhere (a screenshot saved as RGBA) is no transparency: the
    caller checks for alpha < 255.
    """
    if image.mode in ("RGBA", "LA", "PA"):
        return np.asarray(image.getchannel("A"))
    if "transparency" in image.info or image.mode in ("La", "RGBa"):
        return np.asarray(image.convert("RGBA").getchannel("A"))
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels, keeping the colour stored under transparent pixels (never composited)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.float64)
        if image.mode != "I" or values.max(initial=0) > 255:
            values = values / 257.0  # 16-bit samples
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image).astype(np.float64)
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode in ("P", "PA") or "transparency" in image.info:
        # Through RGBA so a palette's transparent entry keeps its own RGB colour.
        return image.convert("RGBA").convert("RGB")
    if image.mode in ("La", "RGBa"):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _gray_of(image: Image.Image) -> np.ndarray:
    """A mask file's grayscale as uint8 H x W (used when it has no alpha)."""
    return np.asarray(_to_rgb(image).convert("L"))


# --------------------------------------------------------------------------------------------
# sizes


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


def _describe_change(before: tuple[int, int], after: tuple[int, int]) -> str:
    """'scaled up', 'scaled down' or 'unchanged', by area."""
    if before == after:
        return "unchanged"
    return "scaled up" if after[0] * after[1] > before[0] * before[1] else "scaled down"


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _target_size(
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
                f"size {_size_text(original)} floored to {_size_text(target)} "
                f"(multiples of {multiple})"
            )
    else:
        if fit_box[0] < 1 or fit_box[1] < 1:
            raise ImageError(
                f"--fit box {_size_text(fit_box)}: width and height must be at least 1"
            )
        target = fit_size(original, fit_box, multiple)
        if 0 not in target:
            notes.append(
                f"fit {_size_text(original)} -> {_size_text(target)} "
                f"(box {_size_text(fit_box)}), {_describe_change(original, target)}"
            )
    if 0 in target:
        if fit_box is None:
            what = f"init image '{shown}' is {_size_text(original)}"
            hint = "; add --fit to scale it into the -W x -H box"
        else:
            fitted = fit_size(original, fit_box, 1)
            what = (
                f"init image '{shown}' ({_size_text(original)}) fitted into "
                f"{_size_text(fit_box)} is {_size_text(fitted)}"
            )
            hint = ""
        raise ImageError(
            f"{what}: too small; both sides must be at least {multiple} pixels "
            f"(the model works in multiples of {multiple}){hint}"
        )
    if max(target) > MAX_SIDE:  # only without --fit: a -W/-H box is at most MAX_SIDE
        raise ImageError(
            f"init image '{shown}' is {_size_text(original)} (it would run at "
            f"{_size_text(target)}): larger than {MAX_SIDE} pixels on a side, the most "
            f"-W/-H accept; add --fit to scale it into the -W x -H box"
        )
    return target


def _size_warnings(
    size: tuple[int, int], small_side: int, large_area: int, fitted: bool
) -> list[str]:
    """The reference's two size warnings, for the size actually used."""
    width, height = size
    found = []
    if width < small_side and height < small_side:
        advice = "use a larger -W/-H" if fitted else "try --fit with -W/-H"
        found.append(
            f"warning: {_size_text(size)} is small: img2img works poorly below "
            f"{small_side}x{small_side}; {advice}"
        )
    if width * height > large_area:
        advice = "a smaller -W/-H" if fitted else "--fit with -W/-H"
        found.append(
            f"warning: {_size_text(size)} is larger than the model's default area "
            f"({large_area} pixels); if you run out of memory, use {advice}"
        )
    return found


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
    raw, _frames = _read_upright(mask_path, "mask", notes)
    alpha = _alpha_of(raw)
    if alpha is not None and bool((alpha < 255).any()):
        notes.append(f"mask from the transparency of '{shown}'")
        return alpha == 255, raw.size
    try:
        gray = _gray_of(raw)
    except ValueError:
        raise ImageError(
            f"cannot read mask '{shown}': its colour mode {raw.mode} cannot be converted to "
            "grayscale (save it as an L, RGB or RGBA PNG)"
        ) from None
    notes.append(f"mask from the gray levels of '{shown}' (black = repaint, white = keep)")
    return gray >= GRAY_KEEP_THRESHOLD, raw.size


def _erased_colour_warning(image: Image.Image, shown: str) -> str | None:
    """Warn when every fully transparent pixel is pure black or white: the colours were erased."""
    alpha = _alpha_of(image)
    if alpha is None:
        return None
    hidden = alpha == 0
    if not hidden.any():
        return None
    rgb = np.asarray(_to_rgb(image))[hidden]
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
    raw, frames = _read_upright(path, "init image", notes)
    if frames > 1:
        notes.append(f"'{shown}' has {frames} frames; using the first")
    original = raw.size
    target = _target_size(original, fit_box, multiple, shown, notes)

    try:
        rgb = _to_rgb(raw)
    except ValueError:
        raise ImageError(
            f"cannot read init image '{shown}': its colour mode {raw.mode} cannot be converted "
            "to RGB (save it as an RGB or RGBA PNG)"
        ) from None
    alpha = _alpha_of(raw)
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
                    f"warning: mask '{mask_path}' is {_size_text(mask_size)} but the image is "
                    f"{_size_text(original)}; the mask is stretched to the image"
                )
            else:
                notes.append(
                    f"mask '{mask_path}' {_size_text(mask_size)} resized with the image"
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

    notes.extend(_size_warnings(target, small_side, large_area, fitted=fit_box is not None))
    return InitImage(image=rgb, mask=mask, original_size=original, notes=notes)


def paste_kept(result: Image.Image, init: InitImage) -> Image.Image:
    """Copy the kept pixels (mask == 1) from the init image, so they equal the input exactly.

    The VAE cannot reproduce pixels bit for bit; pasting back is what makes "kept" true.
    """
    if result.size != init.image.size:
        raise ValueError(
            f"result is {_size_text(result.size)} but the init image is "
            f"{_size_text(init.image.size)}"
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
