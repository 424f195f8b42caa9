"""The path launch options checked when dreamline starts (exit status 2, one line), so a bad
one stops the launch instead of making every line fail later.

``check_launch_paths(args)``: ``-o/--outdir`` must be a directory or one that can be created
(a file, or a place where no folder can be made, is refused; nothing is left behind by the
check), ``--log_file`` a file that can be written (not a directory), each ``--embedding_path``
and ``--vae`` must exist.  ``-c``, ``--model`` and ``--from_file`` are checked where they are
read (cli.py).  Values arrive with ``~`` already expanded (launch_options.path_of).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dreamline.errors import DreamlineError


class LaunchPathError(DreamlineError):
    """A path launch option that cannot be used: one line naming the option and the path."""


def _nearest_existing(path: Path) -> tuple[Path, list[Path]]:
    """The nearest part of ``path`` that exists and the missing folders below it (top first)."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.insert(0, probe)
        probe = probe.parent
    return probe, missing


def check_directory(path: Path, label: str) -> None:
    """``path`` is a directory, or can be made one (tried, then removed again).  Raises
    LaunchPathError naming ``label`` and the path."""
    if path.exists():
        if not path.is_dir():
            raise LaunchPathError(f"{label} {str(path)!r} is a file; expected a directory")
        return
    base, missing = _nearest_existing(path)
    if not base.is_dir():
        raise LaunchPathError(f"{label} {str(path)!r} cannot be created: {str(base)!r} is a "
                              "file; expected a directory path")
    made: list[Path] = []
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:  # another process made it meanwhile
                if not folder.is_dir():
                    raise
                continue
            made.append(folder)
    except OSError as exc:
        raise LaunchPathError(f"{label} {str(path)!r} cannot be created: "
                              f"{exc.strerror or exc}; expected a directory path") from None
    finally:
        for folder in reversed(made):  # only what this check made, and only while empty
            try:
                folder.rmdir()
            except OSError:
                break


def check_file_to_write(path: Path, label: str) -> None:
    """``path`` is a writable file or can be created (its folder too).  Raises
    LaunchPathError naming ``label`` and the path."""
    if path.is_dir():
        raise LaunchPathError(f"{label} {str(path)!r} is a directory; expected a file path")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise LaunchPathError(f"{label} {str(path)!r} is not writable; expected a file "
                                  "dreamline can write")
        return
    check_directory(path.parent, f"{label}'s folder")


def check_exists(path: Path, label: str, expected: str) -> None:
    """``path`` exists.  Raises LaunchPathError naming ``label``, the path and ``expected``."""
    if not path.exists():
        raise LaunchPathError(f"{label} {str(path)!r} does not exist; expected {expected}")


def check_launch_paths(args: argparse.Namespace) -> None:
    """Check the path launch options of ``args`` (see the module docstring)."""
    check_directory(Path(args.outdir), "-o/--outdir")
    if args.log_file is not None:
        check_file_to_write(Path(args.log_file), "--log_file")
    for path in args.embedding_path:
        check_exists(Path(path), "--embedding_path", "an embedding file or folder")
    if args.vae is not None:
        check_exists(Path(args.vae), "--vae", "a VAE file (.pt, .ckpt, .safetensors) or a "
                     "diffusers vae/ folder")
