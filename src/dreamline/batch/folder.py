"""``--each_image DIR``: run every prompt line of a file once per image of a folder.

Each prompt line becomes one line per image, in natural name order (``frame2`` before
``frame10``), with ``-I <image>`` added; its outputs are named after the input
(``NNNNNN.<seed>.<input stem>.png``), so a folder of video frames gives numbered frames back in
the same order.  ``!`` command lines and comments pass through once, where they stand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from dreamline.errors import DreamlineError
from dreamline.repl.commands import is_command_line
from dreamline.repl.lines import SourceLine, without_prompt
from dreamline.repl.validator import is_skipped
from dreamline.request import RequestError
from dreamline.words import quote_path, tokenize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_INIT_SWITCHES = ("-I", "--init_img")


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part.lower())
            for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (by suffix), in natural order; DreamlineError
    when it is not a folder or holds none."""
    if not folder.is_dir():
        raise DreamlineError(f"--each_image {folder}: not a folder; expected a folder of images")
    try:
        found = [path for path in folder.iterdir()
                 if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
    except OSError as exc:
        raise DreamlineError(f"--each_image {folder}: cannot list it: {exc.strerror}") from None
    if not found:
        raise DreamlineError(f"--each_image {folder}: no images in it; expected files ending "
                             f"in {', '.join(IMAGE_SUFFIXES)}")
    return sorted(found, key=_natural_key)


def name_tag(image: Path) -> str:
    """The part of an output's name that names its input: the stem, made file-name safe."""
    from dreamline.outputs import safe_dir_name

    return safe_dir_name(image.stem)


def _has_own_image(line: str) -> bool:
    try:
        words = tokenize(line)
    except RequestError:
        return False  # the parser reports it when the line runs
    return any(word.is_switch and (word.text in _INIT_SWITCHES or
                                   word.text.startswith("--init_img="))
               for word in words)


def each_image(lines: Iterable[SourceLine], images: list[Path]) -> Iterator[SourceLine]:
    """Every prompt line once per image, with ``-I <image>`` added (same line number)."""
    for item in lines:
        if item.text is None or is_skipped(item.text) or is_command_line(without_prompt(
                item.text)):
            yield item
            continue
        if _has_own_image(without_prompt(item.text)):
            yield SourceLine(item.number, None, f"line {item.number}: has its own -I; with "
                             f"--each_image every line takes its image from the folder")
            continue
        for image in images:
            yield SourceLine(item.number, f"{item.text} -I {quote_path(str(image))}")


def tags_for(images: list[Path]) -> dict[str, str]:
    """Resolved image path -> its name tag (what the runner puts in the output names)."""
    return {str(image.resolve()): name_tag(image) for image in images}
