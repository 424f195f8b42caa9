"""Output files: names, the prefix lock, and atomic, never-overwriting, umask-respecting writes.

Naming (reference behaviour, section 6 of dream-cli.md): ``<outdir>/NNNNNN.<seed>.png``.  The
6-digit prefix is one more than the largest prefix already in the directory (any entry whose name
starts with six or more digits and a dot) and is shared by every file of one command.

Decisions that differ from, or add to, the reference:

* The grid is ``NNNNNN.<first seed>.grid.png``.  The reference only wrote the grid when ``-g`` was
  given, so ``NNNNNN.<first seed>.png`` was free; dreamline also writes every image, and that name
  belongs to the first image.  The ``.grid`` name still starts with ``NNNNNN.`` and ends in
  ``.png``, so the reference's own prefix scan (``^(\\d+)\\..*\\.png``) counts it.
* A prefix is reserved under a ``filelock`` lock on ``<outdir>/.dreamline-prefix.lock``; the
  counter file ``<outdir>/.dreamline-prefix`` records the last prefix handed out, so two
  processes (or a reservation whose images are not written yet) never get the same number.
  Prefixes past 999999 simply grow a seventh digit.
* Images are written to a hidden temporary file in the same directory and then hard-linked to the
  final name, which fails instead of replacing an existing file; a crash leaves no half PNG under
  a real name.  Where hard links are not supported the name is claimed with O_EXCL first.  The
  finished file gets the mode any new file gets (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock
from PIL import Image

from dreamline.errors import DreamlineError
from dreamline.pngmeta.chunks import metadata_chunks, png_info

PREFIX_PATTERN = re.compile(r"^(\d{6,})\.")
COUNTER_FILE = ".dreamline-prefix"
LOCK_FILE = ".dreamline-prefix.lock"
GRID_TAG = "grid"
INTERMEDIATES = "intermediates"
NAME_MAX_BYTES = 255  # a file or folder name on ext4, APFS, NTFS (UTF-16 aside), btrfs, ...
DIR_NAME_MAX_CHARS = 80
# os.link failures that mean "no hard links here", not "the disk or the name is the problem"
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS,
                  errno.EMLINK, errno.EACCES}


class OutputError(DreamlineError):
    """An output directory or image file cannot be created or written."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def image_name(prefix: int, seed: int, tag: str | None = None) -> str:
    """``NNNNNN.<seed>.png``, or ``NNNNNN.<seed>.<tag>.png`` (the grid uses tag "grid")."""
    if tag is None:
        return f"{prefix:06d}.{seed}.png"
    return f"{prefix:06d}.{seed}.{tag}.png"


def safe_dir_name(text: str, max_chars: int = DIR_NAME_MAX_CHARS,
                  max_bytes: int = NAME_MAX_BYTES) -> str:
    """A folder name from a prompt's words ('a red fox, at dawn!' -> 'a_red_fox_at_dawn').

    At most ``max_chars`` characters and ``max_bytes`` bytes of UTF-8 (file systems limit a
    name to 255 bytes, so 80 four-byte characters would not fit), cut on a character boundary;
    'no_prompt' when no word is left.
    """
    words = re.sub(r"[^\w\s-]", "", text).split()
    name = "_".join(words)[:max_chars]
    encoded = name.encode("utf-8")
    if len(encoded) > max_bytes:
        name = encoded[:max_bytes].decode("utf-8", errors="ignore")  # drops a cut character
    name = name.strip("_-")
    return name if name else "no_prompt"


def largest_prefix(directory: str | os.PathLike[str]) -> int:
    """The largest numeric prefix among the entries of ``directory`` (0 if none or missing)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    found = [int(m.group(1)) for m in map(PREFIX_PATTERN.match, names) if m is not None]
    return max(found, default=0)


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits a newly created file gets: 0666 less the umask."""
    return 0o666 & ~current_umask()


class OutputDir:
    """One output directory: creates it on demand and hands out unique file-name prefixes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"OutputDir({str(self.path)!r})"

    def ensure(self) -> Path:
        """Create the directory (and its parents) if missing.

        Raises OutputError (one line) when it is a file or cannot be created.
        """
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output directory {str(self.path)!r} is a file; expected a "
                              "directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"output directory {str(self.path)!r} cannot be created: "
                              f"{_reason(error)}") from error
        return self.path

    def lock(self) -> FileLock:
        """The directory's exclusive inter-process lock (prefixes and log appends)."""
        return FileLock(str(self.path / LOCK_FILE))

    def reserve_prefix(self) -> int:
        """Take the next prefix: one more than both the largest on disk and the last handed out.

        The scan and the update of the counter file happen under one exclusive lock, so
        concurrent processes each get their own number even before their images exist.
        Raises OutputError when the directory is not writable.
        """
        self.ensure()
        counter = self.path / COUNTER_FILE
        try:
            with self.lock(), open(counter, "a+", encoding="ascii", errors="replace") as handle:
                handle.seek(0)
                recorded = handle.read().strip()
                last = int(recorded) if recorded.isdigit() else 0  # garbage from a crash: rescan
                prefix = max(last, largest_prefix(self.path)) + 1
                handle.seek(0)
                handle.truncate()
                handle.write(f"{prefix}\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise OutputError(f"output directory {str(self.path)!r} is not writable: "
                              f"{_reason(error)}") from error
        return prefix

    def image_path(self, prefix: int, seed: int, tag: str | None = None) -> Path:
        return self.path / image_name(prefix, seed, tag)


def _publish(temporary: Path, final: Path) -> None:
    """Give the finished temporary file its final name without ever replacing an existing file."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        # no hard links here (some network or FAT file systems): claim the name, then replace
        claim = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(claim)
        os.replace(temporary, final)
    else:
        os.unlink(temporary)


def write_png(path: str | os.PathLike[str], image: Image.Image,
              chunks: dict[str, str] | None = None) -> Path:
    """Write ``image`` as a PNG at ``path`` atomically, with ``chunks`` as text chunks in order.

    The file gets 0666 less the umask.  Raises OutputError naming the file and the OS reason
    ("No space left on device", ...) or that it already exists (never overwritten), and
    MetadataError for a chunk PNG cannot hold (a NUL); nothing is left under the name then.
    """
    final = Path(path)
    info = png_info(chunks if chunks is not None else {})
    directory = OutputDir(final.parent).ensure()
    if final.exists():
        raise OutputError(f"{str(final)!r} already exists; dreamline never overwrites an image")
    try:
        descriptor, temporary_name = tempfile.mkstemp(prefix=".partial-", suffix=".png",
                                                      dir=directory)
    except OSError as error:
        raise OutputError(f"cannot write {str(final)!r}: {_reason(error)}") from error
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            image.save(stream, format="PNG", pnginfo=info)
            stream.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), new_file_mode())
            os.fsync(stream.fileno())
        _publish(temporary, final)
    except FileExistsError as error:
        raise OutputError(f"{str(final)!r} already exists; dreamline never overwrites an "
                          "image") from error
    except OSError as error:
        raise OutputError(f"cannot write {str(final)!r}: {_reason(error)}") from error
    finally:
        temporary.unlink(missing_ok=True)
    return final


def save_image(outdir: str | os.PathLike[str] | OutputDir, prefix: int, seed: int,
               image: Image.Image, command: str, metadata: dict[str, Any] | None = None,
               parameters: str | None = None, *, tag: str | None = None) -> Path:
    """Write ``<outdir>/NNNNNN.<seed>[.tag].png`` with its ``Dream``, ``sd-metadata`` and
    ``parameters`` chunks; return its path.  ``metadata`` is the sd-metadata dict (stored as
    JSON), ``parameters`` the A1111-style text; both are optional so any reader finds something.
    Raises as ``write_png``.
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


def intermediates_dir(outdir: str | os.PathLike[str], prefix: int, seed: int) -> Path:
    """``<outdir>/intermediates/NNNNNN.<seed>/``, created if missing, for --save_intermediates."""
    directory = Path(outdir) / INTERMEDIATES / f"{prefix:06d}.{seed}"
    return OutputDir(directory).ensure()


def save_step(directory: str | os.PathLike[str], step: int, image: Image.Image) -> Path:
    """Write one intermediate as ``step-NNNN.png`` (atomic, never overwriting)."""
    return write_png(Path(directory) / f"step-{step:04d}.png", image)
