"""PNG text chunks: the three keys dreamline writes, their order, and reading any image's chunks.

Every image carries up to three text chunks (tEXt, or iTXt when the text is not Latin-1):
``Dream`` (the command), ``sd-metadata`` (InvokeAI JSON) and ``parameters`` (A1111 text).

The PNG specification forbids NUL in a text chunk (it is the key/value separator), so a chunk
that would hold one is refused with a MetadataError instead of being written corrupt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from dreamline.errors import DreamlineError
from dreamline.regular_files import check_regular_file, file_error_message
from dreamline.pngmeta.invoke3 import INVOKEAI_METADATA_KEY, from_sd_metadata

DREAM_KEY = "Dream"
SD_METADATA_KEY = "sd-metadata"
PARAMETERS_KEY = "parameters"
MAX_KEY_LENGTH = 79  # PNG: keywords are 1-79 Latin-1 characters
METADATA_IMAGE = "a PNG file (an image with generation metadata)"


class MetadataError(DreamlineError):
    """An image has no usable generation metadata, or metadata that cannot be read or stored."""


def metadata_chunks(command: str, metadata: Mapping[str, Any] | None = None,
                    parameters: str | None = None) -> dict[str, str]:
    """The text chunks of one PNG, in writing order: ``Dream``, ``sd-metadata`` (``metadata``
    as JSON), ``invokeai_metadata`` (InvokeAI 3.x+, derived from ``metadata``) and
    ``parameters``, all but ``Dream`` only when given."""
    chunks = {DREAM_KEY: command}
    if metadata is not None:
        chunks[SD_METADATA_KEY] = json.dumps(metadata)
        current = from_sd_metadata(metadata)
        if current is not None:
            chunks[INVOKEAI_METADATA_KEY] = json.dumps(current)
    if parameters is not None:
        chunks[PARAMETERS_KEY] = parameters
    return chunks


def check_chunk(key: str, value: str) -> None:
    """Refuse what a PNG text chunk cannot hold.

    Raises MetadataError (one line) when ``key`` is empty, longer than 79 characters, not
    Latin-1 or holds a NUL, or when ``value`` holds a NUL character.
    """
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise MetadataError(f"PNG text chunk key {key!r}: expected 1 to {MAX_KEY_LENGTH} "
                            "characters without NUL")
    try:
        key.encode("latin-1")
    except UnicodeEncodeError:
        raise MetadataError(f"PNG text chunk key {key!r}: expected Latin-1 characters") \
            from None
    if "\x00" in value:
        where = value.index("\x00")
        raise MetadataError(f"PNG text chunk {key!r} would hold a NUL character (at character "
                            f"{where}); PNG text cannot store NUL: remove it from the prompt")


def png_info(chunks: Mapping[str, str]) -> PngImagePlugin.PngInfo:
    """Text chunks in the given order: tEXt when the value is Latin-1, iTXt (UTF-8) otherwise.

    Raises MetadataError for a chunk PNG cannot hold (see ``check_chunk``).
    """
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        check_chunk(key, value)
        info.add_text(key, value)
    return info


def read_text_chunks(png_path: str | os.PathLike[str]) -> dict[str, str]:
    """Every text chunk of an image (tEXt, zTXt and iTXt alike), as {key: text}.

    Raises MetadataError (one line naming the file) for a missing file, a directory, a device
    or pipe, a file that is not an image, or one that cannot be read.
    """
    name = os.fspath(png_path)
    path = check_regular_file(name, "image", METADATA_IMAGE, error=MetadataError)
    try:
        with Image.open(path) as image:
            text = getattr(image, "text", None)  # PNG: includes chunks after the pixel data
            found = text if text is not None else image.info
            return {str(key): str(value) for key, value in found.items()
                    if isinstance(value, str)}
    except FileNotFoundError as error:  # gone since the check: said the same way
        raise MetadataError(file_error_message(name, "image", "no such file", METADATA_IMAGE)) \
            from error
    except UnidentifiedImageError as error:
        raise MetadataError(f"{name}: not an image; expected a PNG file") from error
    except OSError as error:
        raise MetadataError(f"{name}: cannot be read: {error.strerror or error}") from error


def no_metadata(name: str) -> MetadataError:
    """The error for an image that carries none of the three chunks."""
    return MetadataError(f"{name}: has no generation metadata; expected a PNG with a 'Dream', "
                         "'sd-metadata' or A1111 'parameters' text chunk")


def load_json(name: str, text: str, chunk: str = "sd-metadata") -> dict[str, Any]:
    """A metadata chunk's JSON object (``chunk`` names it in messages: "sd-metadata",
    "invokeai_metadata", "NovelAI Comment"...); MetadataError naming the file ``name`` if it is
    not valid JSON or not an object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{name}: its {chunk} chunk is not valid JSON ({error.msg})") \
            from error
    if not isinstance(data, dict):
        raise MetadataError(f"{name}: its {chunk} chunk is not a JSON object")
    return data
