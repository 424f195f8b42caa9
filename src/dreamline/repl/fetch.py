"""Reading an image's command back for the REPL (``!fetch``, an empty prompt with ``-I``).

In this order: a ``Dream`` chunk (ours, or the reference's with its grid comment dropped), else
an A1111 ``parameters`` chunk converted to a dream command, else an ``sd-metadata`` chunk alone
converted the same way; an image with none of them is a MetadataError.  This is the one place
where PNG metadata meets the prompt-line parser: the writing side (``dreamline.pngmeta``,
``dreamline.outputs``) never imports it.
"""

from __future__ import annotations

import os
from typing import Any

from dreamline.errors import DreamlineError
from dreamline.format import format_command
from dreamline.parse import parse_line
from dreamline.pngmeta.a1111 import a1111_request, parse_a1111
from dreamline.pngmeta.chunks import (
    PARAMETERS_KEY, SD_METADATA_KEY, MetadataError, load_json, no_metadata, read_text_chunks,
)
from dreamline.pngmeta.invokeai import dream_command, sd_metadata_request
from dreamline.request import Request


def read_command(png_path: str | os.PathLike[str]) -> str:
    """The dream command that reproduces the image (a grid: the whole grid).

    Raises MetadataError (one line naming the file) when the file cannot be read or carries no
    usable metadata.
    """
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    command = dream_command(name, chunks)
    if command is not None:
        return command
    if chunks.get(PARAMETERS_KEY, "").strip():
        return format_command(a1111_request(name, parse_a1111(chunks[PARAMETERS_KEY])))
    if SD_METADATA_KEY in chunks:
        return format_command(sd_metadata_request(name, load_json(name, chunks[SD_METADATA_KEY])))
    raise no_metadata(name)


def read_metadata(png_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The image's sd-metadata as a dict; for an A1111 image (no sd-metadata) its parameters
    taken apart: ``{"parameters": {"prompt", "negative_prompt", <A1111 field>: text...}}``.

    Raises MetadataError as ``read_command`` does.
    """
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    if SD_METADATA_KEY in chunks:
        return load_json(name, chunks[SD_METADATA_KEY])
    if chunks.get(PARAMETERS_KEY, "").strip():
        parsed = parse_a1111(chunks[PARAMETERS_KEY])
        return {"parameters": {"prompt": parsed.prompt, "negative_prompt": parsed.negative,
                               **parsed.fields}}
    raise no_metadata(name)


def read_request(png_path: str | os.PathLike[str], defaults: Request | None = None) -> Request:
    """The image's command parsed into a Request (over ``defaults``, else ``Request()``).

    Raises MetadataError when the stored command cannot be read or parsed.
    """
    name = os.fspath(png_path)
    command = read_command(name)
    try:
        return parse_line(command, defaults if defaults is not None else Request()).request
    except DreamlineError as error:
        raise MetadataError(f"{name}: its stored command cannot be read back: {error}") \
            from error


def read_prompt(png_path: str | os.PathLike[str]) -> str:
    """Just the prompt of the image's command (an empty prompt with -I reuses it).

    Raises MetadataError as ``read_request`` does.
    """
    return read_request(png_path).prompt
