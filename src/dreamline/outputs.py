"""Where images go: file names, atomic PNG writes with metadata chunks, grids, strips and logs.

Naming (reference behaviour, section 6 of dream-cli.md): ``<outdir>/NNNNNN.<seed>.png``.  The
6-digit prefix is one more than the largest prefix already in the directory (any entry whose name
starts with six or more digits and a dot) and is shared by every file of one command.

Decisions that differ from, or add to, the reference:

* The grid is ``NNNNNN.<first seed>.grid.png``.  The reference only wrote the grid when ``-g`` was
  given, so ``NNNNNN.<first seed>.png`` was free; dreamline also writes every image, and that name
  belongs to the first image.  The ``.grid`` name still starts with ``NNNNNN.`` and ends in
  ``.png``, so the reference's own prefix scan (``^(\\d+)\\..*\\.png``) counts it.
* A prefix is reserved under an exclusive lock on ``<outdir>/.dreamline-prefix``, which also
  records the last prefix handed out, so two processes (or a reservation whose images are not
  written yet) never get the same number.  Prefixes past 999999 simply grow a seventh digit.
* Images are written to a hidden temporary file in the same directory and then hard-linked to the
  final name, which fails instead of replacing an existing file; a crash leaves no half PNG under
  a real name.  Where hard links are not supported the name is claimed with O_EXCL first.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from dreamline.errors import DreamlineError
from dreamline.metadata import (  # noqa: F401  (re-exported: outputs is the REPL's one door)
    MetadataError, a1111_parameters, grid_command, grid_metadata, metadata_chunks, read_command,
    read_metadata, read_prompt, sd_metadata,
)

PREFIX_PATTERN = re.compile(r"^(\d{6,})\.")
COUNTER_FILE = ".dreamline-prefix"
GRID_TAG = "grid"
LOG_TXT = "invoke_log.txt"
LOG_MD = "invoke_log.md"
INTERMEDIATES = "intermediates"


class OutputError(DreamlineError):
    """An output directory or image file cannot be created or written."""


def image_name(prefix: int, seed: int, tag: str | None = None) -> str:
    """``NNNNNN.<seed>.png``, or ``NNNNNN.<seed>.<tag>.png`` (the grid uses tag "grid")."""
    if tag is None:
        return f"{prefix:06d}.{seed}.png"
    return f"{prefix:06d}.{seed}.{tag}.png"


def largest_prefix(directory: str | os.PathLike[str]) -> int:
    """The largest numeric prefix among the entries of ``directory`` (0 if none or missing)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    found = [int(m.group(1)) for m in map(PREFIX_PATTERN.match, names) if m is not None]
    return max(found, default=0)


@contextmanager
def _exclusive(handle: IO[str]) -> Iterator[None]:
    """Hold an exclusive, blocking lock on an open file (fcntl on POSIX, msvcrt on Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class OutputDir:
    """One output directory: creates it on demand and hands out unique file-name prefixes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"OutputDir({str(self.path)!r})"

    def ensure(self) -> Path:
        """Create the directory (and its parents) if missing; one-line error if impossible."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output directory {str(self.path)!r} is a file; expected a "
                              "directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"output directory {str(self.path)!r} cannot be created: "
                              f"{error.strerror or error}") from error
        return self.path

    def reserve_prefix(self) -> int:
        """Take the next prefix: one more than both the largest on disk and the last handed out.

        The scan and the update of the counter file happen under one exclusive lock, so
        concurrent processes each get their own number even before their images exist.
        """
        self.ensure()
        counter = self.path / COUNTER_FILE
        try:
            handle = open(counter, "a+", encoding="ascii")
        except OSError as error:
            raise OutputError(f"output directory {str(self.path)!r} is not writable: "
                              f"{error.strerror or error}") from error
        with handle, _exclusive(handle):
            handle.seek(0)
            recorded = handle.read().strip()
            last = int(recorded) if recorded.isdigit() else 0  # garbage from a crash: rescan
            prefix = max(last, largest_prefix(self.path)) + 1
            handle.seek(0)
            handle.truncate()
            handle.write(f"{prefix}\n")
            handle.flush()
            os.fsync(handle.fileno())
        return prefix

    def image_path(self, prefix: int, seed: int, tag: str | None = None) -> Path:
        return self.path / image_name(prefix, seed, tag)


def png_info(chunks: dict[str, str]) -> PngImagePlugin.PngInfo:
    """Text chunks in the given order: tEXt when the value is Latin-1, iTXt (UTF-8) otherwise."""
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return info


def _publish(temporary: Path, final: Path) -> None:
    """Give the finished temporary file its final name without ever replacing an existing file."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network or FAT file systems): claim, then replace
        claim = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(claim)
        os.replace(temporary, final)
    else:
        os.unlink(temporary)


def write_png(path: str | os.PathLike[str], image: Image.Image,
              chunks: dict[str, str] | None = None) -> Path:
    """Write ``image`` as a PNG at ``path`` atomically; never overwrite an existing file."""
    final = Path(path)
    directory = OutputDir(final.parent).ensure()
    if final.exists():
        raise OutputError(f"{str(final)!r} already exists; dreamline never overwrites an image")
    info = png_info(chunks if chunks is not None else {})
    try:
        descriptor, temporary_name = tempfile.mkstemp(prefix=".partial-", suffix=".png",
                                                      dir=directory)
    except OSError as error:
        raise OutputError(f"cannot write in {str(directory)!r}: {error.strerror or error}") \
            from error
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            image.save(stream, format="PNG", pnginfo=info)
            stream.flush()
            os.fsync(stream.fileno())
        _publish(temporary, final)
    except FileExistsError as error:
        raise OutputError(f"{str(final)!r} already exists; dreamline never overwrites an "
                          "image") from error
    except OSError as error:
        raise OutputError(f"cannot write {str(final)!r}: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)
    return final


def save_image(outdir: str | os.PathLike[str] | OutputDir, prefix: int, seed: int,
               image: Image.Image, command: str, metadata: dict[str, Any] | None = None,
               parameters: str | None = None, *, tag: str | None = None) -> Path:
    """Write ``<outdir>/NNNNNN.<seed>[.tag].png`` with its ``Dream``, ``sd-metadata`` and
    ``parameters`` chunks; return its path.  ``metadata`` is the sd-metadata dict (stored as
    JSON), ``parameters`` the A1111-style text; both are optional so any reader finds something.
    """
    directory = outdir if isinstance(outdir, OutputDir) else OutputDir(outdir)
    path = directory.image_path(prefix, seed, tag)
    return write_png(path, image, metadata_chunks(command, metadata, parameters))


def save_grid(outdir: str | os.PathLike[str] | OutputDir, prefix: int, first_seed: int,
              grid: Image.Image, command: str, metadata: dict[str, Any] | None = None,
              parameters: str | None = None) -> Path:
    """Write the grid as ``NNNNNN.<first seed>.grid.png`` (see the module notes)."""
    return save_image(outdir, prefix, first_seed, grid, command, metadata, parameters,
                      tag=GRID_TAG)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) for ``count`` images: rows = floor(sqrt(n)), columns = ceil(n / rows)."""
    if count < 1:
        raise ValueError(f"a grid needs at least one image, got {count}")
    rows = math.isqrt(count)
    return rows, math.ceil(count / rows)


def _cell_size(images: Sequence[Image.Image]) -> tuple[int, int]:
    """The largest width and height: images of different sizes are padded, never cropped."""
    return max(im.width for im in images), max(im.height for im in images)


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """All images in order, row by row, on black (like the reference's grid)."""
    rows, columns = grid_shape(len(images))
    cell_width, cell_height = _cell_size(images)
    grid = Image.new("RGB", (cell_width * columns, cell_height * rows))
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid.paste(image.convert("RGB"), (column * cell_width, row * cell_height))
    return grid


STRIP_MIN_CELL = 96  # strip cells smaller than this are blown up (nearest) to be seen


def strip_zoom(cell_height: int) -> int:
    """Whole-number zoom that makes a strip cell at least STRIP_MIN_CELL pixels high (small
    models draw 32-pixel images; a strip of those would be unreadable)."""
    return max(1, -(-STRIP_MIN_CELL // cell_height))


def make_strip(images: Sequence[Image.Image], labels: Sequence[str] | None = None) -> Image.Image:
    """Images side by side (the step pictures of IMG2IMG.md), small ones blown up by
    ``strip_zoom``, each optionally labelled in a band underneath that never covers a picture."""
    if not images:
        raise ValueError("a strip needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    cell_width, cell_height = _cell_size(images)
    zoom = strip_zoom(cell_height)
    width, height = cell_width * zoom, cell_height * zoom
    font = ImageFont.load_default(size=max(10, min(height // 10, 18)))
    band = 0 if labels is None else font.getbbox("Ag")[3] + 6
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


def intermediates_dir(outdir: str | os.PathLike[str], prefix: int, seed: int) -> Path:
    """``<outdir>/intermediates/NNNNNN.<seed>/``, created if missing, for --save_intermediates."""
    directory = Path(outdir) / INTERMEDIATES / f"{prefix:06d}.{seed}"
    return OutputDir(directory).ensure()


def save_step(directory: str | os.PathLike[str], step: int, image: Image.Image) -> Path:
    """Write one intermediate as ``step-NNNN.png`` (atomic, never overwriting)."""
    return write_png(Path(directory) / f"step-{step:04d}.png", image)


def output_entries(number: int, paths_and_commands: Sequence[tuple[str | os.PathLike[str], str]]
                   ) -> list[tuple[str, Path, str]]:
    """Label each file of one command: ``N`` for a single file, ``N.1``, ``N.2``... for several.

    The REPL passes the command's file prefix as ``number`` so log numbers match file names
    across sessions (the reference used a per-session counter).
    """
    if len(paths_and_commands) == 1:
        path, command = paths_and_commands[0]
        return [(str(number), Path(path), command)]
    return [(f"{number}.{index}", Path(path), command)
            for index, (path, command) in enumerate(paths_and_commands, start=1)]


def format_output_lines(number: int,
                        paths_and_commands: Sequence[tuple[str | os.PathLike[str], str]]
                        ) -> list[str]:
    """The lines printed after a command: ``Outputs:`` then ``[N] path: command`` per file."""
    if not paths_and_commands:
        return []
    entries = output_entries(number, paths_and_commands)
    return ["Outputs:"] + [f"[{label}] {path}: {command}" for label, path, command in entries]


def _append(path: Path, text: str) -> None:
    """One O_APPEND write, so blocks from concurrent processes do not interleave."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, text.encode("utf-8"))
    finally:
        os.close(descriptor)


def _markdown_target(outdir: Path, path: Path) -> str:
    """The image's address as seen from invoke_log.md inside ``outdir``."""
    try:
        return Path(os.path.relpath(path, outdir)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def append_logs(outdir: str | os.PathLike[str], entries: Sequence[tuple[str, Path, str]]) -> None:
    """Append ``[N] path: command`` lines to invoke_log.txt and one block per file to
    invoke_log.md (``## name``, the image, the command in a code block)."""
    if not entries:
        return
    directory = OutputDir(outdir).ensure()
    text = "".join(f"[{label}] {path}: {command}\n" for label, path, command in entries)
    markdown = "".join(
        f"## {Path(path).name}\n![]({_markdown_target(directory, Path(path))})\n"
        f"```\n{command}\n```\n\n"
        for _, path, command in entries
    )
    try:
        _append(directory / LOG_TXT, text)
        _append(directory / LOG_MD, markdown)
    except OSError as error:
        raise OutputError(f"cannot append to the logs in {str(directory)!r}: "
                          f"{error.strerror or error}") from error
