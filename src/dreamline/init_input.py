"""The caller's side of img2img: read the init image (and mask) and hash the file, so the
generator core receives pixels, never paths.

Torch-free: this only opens files (dreamline.images) and hashes them (dreamline.models.hashing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamline.errors import ImageError
from dreamline.images import InitImage, load_init_image
from dreamline.models.hashing import sha256_file, short_hash
from dreamline.request import Request

Report = Callable[[str], None]


@dataclass(frozen=True)
class PreparedInit:
    """An init image ready for the Generator, and what the metadata records about its file.

    ``image`` is RGB at its final size (already --fit into the box, or floored to the model's
    multiple), with its optional mask (H x W float, 1 = keep, 0 = repaint).
    """

    image: InitImage
    short_hash: str  # first 10 hex digits of the init file's sha256 (models.hashing's form)


def file_short_hash(path: str) -> str:
    """The init file's short hash; ImageError (one line) if it cannot be read."""
    try:
        return short_hash(sha256_file(Path(path)))
    except OSError as error:
        raise ImageError(f"init image {path!r} cannot be read: {error.strerror}") from error


def prepare_init(request: Request, *, default_size: tuple[int, int], multiple: int,
                 report: Report) -> PreparedInit | None:
    """Load ``request``'s init image and mask for a model; None for a txt2img request.

    ``default_size`` is the model's (width, height): the --fit box where -W/-H are not given,
    and the scale of the size warnings.  ``multiple`` is the model's size multiple (64 for
    SD 1.x).  Each note (fit, EXIF, mask) goes to ``report`` as one line.
    Raises ImageError (one line, naming the file) for an image or mask the user must fix.
    """
    if request.init_img is None:
        return None
    default_width, default_height = default_size
    fit_box = None
    if request.fit:
        fit_box = (request.width if request.width is not None else default_width,
                   request.height if request.height is not None else default_height)
    loaded = load_init_image(request.init_img, fit_box=fit_box, multiple=multiple,
                             mask_path=request.init_mask, invert_mask=request.invert_mask,
                             small_side=min(default_width, default_height),
                             large_area=default_width * default_height)
    for note in loaded.notes:
        report(note)
    return PreparedInit(image=loaded, short_hash=file_short_hash(request.init_img))
