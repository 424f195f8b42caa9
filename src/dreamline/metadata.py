"""Compatibility door for the merge: the old ``dreamline.metadata`` names.

The code now lives by direction: ``dreamline.pngmeta.chunks`` / ``.invokeai`` / ``.a1111``
(writing, torch- and parser-free) and ``dreamline.repl.fetch`` (reading a command or prompt back,
which needs the parser).  Delete this module once repl/runner.py, repl/session.py and
repl/commands.py import from those modules directly.
"""

from __future__ import annotations

import os
from typing import Any

from dreamline.pngmeta.a1111 import a1111_parameters, grid_parameters
from dreamline.pngmeta.chunks import MetadataError
from dreamline.pngmeta.invokeai import grid_command, grid_metadata, sd_metadata

__all__ = ["MetadataError", "a1111_parameters", "fetch", "grid_command", "grid_metadata", "grid_parameters",
           "read_command",
           "read_metadata",
           "read_prompt", "sd_metadata"]


def read_command(png_path: str | os.PathLike[str]) -> str:
    """Forwards to ``dreamline.repl.fetch.read_command`` (imported on call: the parser stays
    out of the writing side)."""
    from dreamline.repl.fetch import read_command as fetch_command

    return fetch_command(png_path)


def fetch(png_path: str | os.PathLike[str]) -> Any:
    """Forwards to ``dreamline.repl.fetch.fetch``: ``FetchedCommand(command, notes)``, the notes
    being lines to print (what the command cannot replay)."""
    from dreamline.repl.fetch import fetch as fetch_command

    return fetch_command(png_path)


def read_prompt(png_path: str | os.PathLike[str]) -> str:
    """Forwards to ``dreamline.repl.fetch.read_prompt``."""
    from dreamline.repl.fetch import read_prompt as fetch_prompt

    return fetch_prompt(png_path)


def read_metadata(png_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Forwards to ``dreamline.repl.fetch.read_metadata``."""
    from dreamline.repl.fetch import read_metadata as fetch_metadata

    return fetch_metadata(png_path)
