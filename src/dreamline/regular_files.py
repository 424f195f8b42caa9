"""The one "is this a regular file I can read" check, for every path a user names as input.

Init images and masks (``image_files.py``), images read back for their metadata
(``pngmeta/chunks.py``) and ``-I``/``-M`` paths at the prompt (``repl/inputs.py``) all refuse
the same things with the same words, before anything is opened: a FIFO would block forever and
``/dev/zero`` never ends.  Torch-free, Pillow-free: every layer may import it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dreamline.errors import DreamlineError

IMAGE_FILE = "a PNG, JPEG, WebP, BMP, GIF or TIFF file"  # what an init image or mask should be

_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """What keeps ``path`` from being read as a regular file, or None when it can be.

    The answer reads after the path: "no such file", "is a directory", "is a FIFO (named
    pipe), not a regular file", "is a character device, not a regular file", "cannot be read:
    permission denied", ...  Nothing is opened.
    """
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of the path is not a directory)"
    except PermissionError:
        return "cannot be read: permission denied"
    except OSError as error:
        return f"cannot be read: {(error.strerror or str(error)).lower()}"
    for test, problem in _NOT_REGULAR:
        if test(mode):
            return problem
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if not os.access(Path(path).expanduser(), os.R_OK):
        return "cannot be read: permission denied"
    return None


def file_error_message(path: str | os.PathLike[str], what: str, problem: str,
                       expected: str) -> str:
    """The one wording: "init image 'x.png': is a directory; expected a PNG ... file"."""
    return f"{what} '{os.fspath(path)}': {problem}; expected {expected}"


def check_regular_file(path: str | os.PathLike[str], what: str, expected: str, *,
                       error: type[DreamlineError] = DreamlineError) -> Path:
    """``path`` (user folder expanded) when it is a regular file this process can read.

    ``what`` names the role ("init image", "mask image"), ``expected`` what should be there
    ("an image file").  Raises ``error`` (a DreamlineError subclass) with one line naming the
    path, what it is instead (missing, a directory, a FIFO, a device, a socket, unreadable) and
    what was expected.
    """
    problem = file_problem(path)
    if problem is not None:
        raise error(file_error_message(path, what, problem, expected))
    return Path(path).expanduser()
