"""Reading init image and mask files: regular files only, fully decoded, EXIF-upright, RGB.

Files are EXIF-rotated because phones store portraits sideways; transparent pixels keep their
colour because inpainting starts from it.  Every way a file can fail becomes one ImageError line
naming it; Pillow's own warnings (damaged EXIF, ...) become one note.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dreamline.errors import ImageError
from dreamline.regular_files import (IMAGE_FILE, check_regular_file, file_error_message,
                                     file_problem)

EXPECTED_FORMATS = "expected PNG, JPEG, WebP, BMP, GIF or TIFF"


def open_image(path: str | os.PathLike[str], what: str) -> tuple[Image.Image, int]:
    """Open and fully decode an image file (first frame), and its frame count.

    Every way a file can fail becomes one ImageError line naming it.
    """
    shown = str(path)
    file_path = check_regular_file(path, what, IMAGE_FILE, error=ImageError)
    prefix = f"cannot read {what} '{shown}'"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file_path) as opened:
                opened.load()
                image = opened.copy()
                frames = int(getattr(opened, "n_frames", 1))
    except (FileNotFoundError, PermissionError):  # changed since the check: say it the same way
        raise ImageError(file_error_message(path, what, file_problem(path) or "cannot be read",
                                            IMAGE_FILE)) from None
    except Image.DecompressionBombError as error:
        # Pillow's message: "Image size (400000000 pixels) exceeds limit of 178956970 pixels..."
        numbers = re.findall(r"\((\d+) pixels\)|of (\d+) pixels", str(error))
        found = [int(a or b) for a, b in numbers]
        shown = (f" ({found[0]:,} pixels); expected at most {found[1]:,}" if len(found) == 2
                 else "")
        raise ImageError(f"{prefix}: the image is too large to load safely{shown} (scale it "
                         "down first)") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{prefix}: not an image file ({EXPECTED_FORMATS})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{prefix}: damaged or unsupported image ({detail})") from None
    return image, frames


EXIF_ORIENTATION = 0x0112


def exif_upright(image: Image.Image, notes: list[str], shown: str) -> Image.Image:
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


def read_upright(
    path: str | os.PathLike[str], what: str, notes: list[str]
) -> tuple[Image.Image, int]:
    """Open a file and turn it upright, with Pillow's own warnings (damaged EXIF, ...) turned
    into one note instead of raw library lines; returns the image and its frame count."""
    shown = str(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opened, frames = open_image(path, what)
        upright = exif_upright(opened, notes, shown)
    messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    if messages:
        detail = "; ".join(message.rstrip(". ") for message in messages[:2])
        notes.append(f"warning: {what} '{shown}' has damaged metadata ({detail}); "
                     "its pixels are used as read")
    return upright, frames


def alpha_of(image: Image.Image) -> np.ndarray | None:
    """The alpha channel as uint8 H x W (alpha, palette or PNG tRNS), or None if there is none.

    An alpha channel that is 255 everywhere (a screenshot saved as RGBA) is no transparency: the
    caller checks for alpha < 255.
    """
    if image.mode in ("RGBA", "LA", "PA"):
        return np.asarray(image.getchannel("A"))
    if "transparency" in image.info or image.mode in ("La", "RGBa"):
        return np.asarray(image.convert("RGBA").getchannel("A"))
    return None


def to_rgb(image: Image.Image) -> Image.Image:
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


def gray_of(image: Image.Image) -> np.ndarray:
    """A mask file's grayscale as uint8 H x W (used when it has no alpha)."""
    return np.asarray(to_rgb(image).convert("L"))


_TURNED = (5, 6, 7, 8)  # EXIF orientations whose upright picture swaps width and height


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The upright (width, height) of an image file from its header, without decoding it;
    None when it is not a regular file or not a readable image (opening it will say why)."""
    if file_problem(path) is not None:
        return None
    file_path = Path(path).expanduser()
    try:
        with warnings.catch_warnings(), Image.open(file_path) as image:
            warnings.simplefilter("ignore")
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in _TURNED else (width, height)
