"""Reading an image's command back for the REPL (``!fetch``, an empty prompt with ``-I``).

``fetch(png)`` returns the command and notes (lines the REPL prints: what the image used that
the command cannot replay).  In this order:

1. ``Dream`` (ours: exactly; InvokeAI 2.x's: without its grid comment; when it holds switches
   dreamline does not run, or is the placeholder ``<too lazy to implement>``, the command is
   built from ``sd-metadata`` instead, or the switches are left out, and named in a note);
2. ``invokeai_metadata`` (InvokeAI 3.x and later);
3. a ComfyUI ``prompt`` graph (falling back to ``parameters`` when it cannot be traced);
4. ``parameters``: JSON (Fooocus, SwarmUI, ...) or A1111-style text (A1111 and its forks);
5. NovelAI's ``Comment``; Tensor.Art's ``generation_data``; ``sd-metadata`` alone.

An image with none of them, or whose metadata cannot become a command, is a MetadataError
naming the file and the reason.  This is the one place where PNG metadata meets the prompt-line
parser: the writing side (``dreamline.pngmeta``, ``dreamline.outputs``) never imports it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from dreamline.errors import DreamlineError
from dreamline.format import format_command
from dreamline.parse import parse_line
from dreamline.pngmeta.a1111 import parse_a1111
from dreamline.pngmeta.chunks import (
    PARAMETERS_KEY,
    SD_METADATA_KEY,
    MetadataError,
    load_json,
    read_text_chunks,
)
from dreamline.pngmeta.invoke3 import INVOKEAI_METADATA_KEY
from dreamline.pngmeta.invokeai import dream_command, is_ours, sd_metadata_request
from dreamline.pngmeta.readers.a1111 import a1111_fetched
from dreamline.pngmeta.readers.comfyui import comfyui_fetched
from dreamline.pngmeta.readers.common import Fetched
from dreamline.pngmeta.readers.invoke3 import invoke3_fetched
from dreamline.pngmeta.readers.jsonparams import json_fetched
from dreamline.pngmeta.readers.novelai import is_novelai, novelai_fetched
from dreamline.repl.fetch_loras import LocalLoras, check_loras, lora_hashes
from dreamline.request import Request
from dreamline.switches import UNSUPPORTED
from dreamline.words import quote, tokenize

COMFYUI_KEY = "prompt"
TENSORART_KEY = "generation_data"
PLACEHOLDER = "<too lazy to implement>"  # InvokeAI 2.x's Dream text for some images
_NOT_RUN = {name: entry.feature for entry in UNSUPPORTED for name in entry.names}


class FetchedCommand(NamedTuple):
    """A command that the REPL can put on the input line, and lines to print with it."""

    command: str
    notes: tuple[str, ...]


class NoMetadata(MetadataError):
    """The image carries no generation metadata at all (a photo, a plain PNG)."""


def _no_metadata(name: str) -> MetadataError:
    return NoMetadata(f"{name}: has no generation metadata; expected a PNG with a 'Dream', "
                         "'sd-metadata' or A1111 'parameters' text chunk (or InvokeAI 3+, "
                         "ComfyUI, Fooocus, SwarmUI or NovelAI metadata)")


def _v2_notes(metadata: Mapping[str, Any]) -> list[str]:
    """What an InvokeAI 2.x sd-metadata image used that dreamline does not run."""
    image = metadata.get("image")
    images = metadata.get("images")
    if not isinstance(image, Mapping) and isinstance(images, list) and images:
        image = images[0]
    if not isinstance(image, Mapping):
        return []
    steps = image.get("postprocessing") or []
    used = [str(step.get("type")) for step in (steps if isinstance(steps, list) else [steps])
            if isinstance(step, Mapping)]
    used += [key for key in ("threshold", "perlin", "hires_fix") if image.get(key)]
    return [f"InvokeAI 2.x: not replayed (dreamline does not run them): {', '.join(used)}"] \
        if used else []


def _from_sd_metadata(name: str, chunks: Mapping[str, str], why: str) -> FetchedCommand:
    metadata = load_json(name, chunks[SD_METADATA_KEY])
    notes = [why] if why else []
    fetched = _command(Fetched(sd_metadata_request(name, metadata), ()))
    return FetchedCommand(fetched.command, tuple(notes + _v2_notes(metadata)))


def _without_unrun(name: str, command: str) -> tuple[FetchedCommand, list[str]]:
    """An InvokeAI 2.x Dream command without the switches dreamline does not run, and those
    switches ('-G (face restoration)', ...)."""
    try:
        tokens = tokenize(command)
    except DreamlineError as error:
        raise MetadataError(f"{name}: its Dream command cannot be read: {error}") from error
    kept: list[str] = []
    dropped: list[str] = []
    skipping = False
    for token in tokens:
        word = command[token.start:token.end]
        if token.dash and token.text in _NOT_RUN:
            skipping = True
            dropped.append(f"{token.text} ({_NOT_RUN[token.text]})")
            continue
        if skipping and not (token.dash and not _is_number(token.text)):
            continue
        skipping = False
        kept.append(word)
    notes = (f"InvokeAI 2.x: not replayed (dreamline does not run them): {', '.join(dropped)}",) \
        if dropped else ()
    return FetchedCommand(" ".join(kept), notes), dropped


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dream(name: str, chunks: Mapping[str, str]) -> FetchedCommand | None:
    command = dream_command(name, chunks)
    if command is None:
        return None
    if is_ours(name, chunks):
        return FetchedCommand(command, ())
    has_meta = bool(chunks.get(SD_METADATA_KEY, "").strip())
    if command.strip() == PLACEHOLDER:
        if has_meta:
            return _from_sd_metadata(name, chunks, "")
        raise MetadataError(f"{name}: its Dream chunk is InvokeAI's placeholder "
                            f"{PLACEHOLDER!r} and there is no sd-metadata to read instead")
    try:
        parse_line(command, Request())
        return FetchedCommand(command, ())
    except DreamlineError as error:
        stripped, dropped = _without_unrun(name, command)
        if has_meta:
            held = (f"holds switches dreamline does not run ({', '.join(dropped)})" if dropped
                    else f"cannot be read here ({error})")
            return _from_sd_metadata(name, chunks, f"InvokeAI 2.x: the Dream command {held}; "
                                     "the command is built from its sd-metadata")
        try:
            parse_line(stripped.command, Request())
        except DreamlineError as again:
            raise MetadataError(f"{name}: its Dream command cannot be read back: {again}") \
                from again
        return stripped


def _command(fetched: Fetched) -> FetchedCommand:
    """Format the Request; without a usable seed (said in a note) the command has no -S, so
    it draws a new one."""
    request = fetched.request
    if request.seed is not None:
        return FetchedCommand(format_command(request), fetched.notes)
    command = format_command(dataclasses.replace(request, seed=0))
    start = len(quote(request.prompt))
    rest = command[start:].replace(" -S 0", "", 1)
    return FetchedCommand(command[:start] + rest, fetched.notes)


def fetch(png_path: str | os.PathLike[str], *, loras: LocalLoras | None = None
          ) -> FetchedCommand:
    """The dream command that comes closest to the image (a grid: the whole grid), and notes
    naming what it cannot replay.  With ``loras`` (the session's LoRA folder), the LoRAs the
    command names are looked up: found by A1111 hash under another name -> renamed, not found
    -> one note naming them (repl/fetch_loras.py).

    Raises MetadataError (one line naming the file) when the file cannot be read or carries no
    usable metadata.
    """
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    fetched = _fetch(name, chunks)
    if loras is None:
        return fetched
    parameters = chunks.get(PARAMETERS_KEY, "").strip()
    field = parse_a1111(parameters).fields.get("Lora hashes", "") \
        if parameters and not parameters.startswith("{") else ""
    command, notes = check_loras(fetched.command, lora_hashes(field), loras)
    return FetchedCommand(command, (*fetched.notes, *notes))


def _fetch(name: str, chunks: Mapping[str, str]) -> FetchedCommand:
    dream = _dream(name, chunks)
    if dream is not None:
        return dream
    if chunks.get(INVOKEAI_METADATA_KEY, "").strip():
        return _command(invoke3_fetched(name, chunks[INVOKEAI_METADATA_KEY]))
    parameters = chunks.get(PARAMETERS_KEY, "").strip()
    if chunks.get(COMFYUI_KEY, "").lstrip().startswith("{"):
        try:
            return _command(comfyui_fetched(name, chunks[COMFYUI_KEY]))
        except MetadataError as error:
            if not parameters:
                raise
            fallback = _parameters(name, parameters)
            why = f"{error}; read its parameters chunk instead"
            return FetchedCommand(fallback.command, (why, *fallback.notes))
    if parameters:
        return _parameters(name, parameters)
    if is_novelai(chunks):
        return _command(novelai_fetched(name, chunks))
    if chunks.get(TENSORART_KEY, "").lstrip().startswith("{"):
        return _command(json_fetched(name, chunks[TENSORART_KEY], "Tensor.Art"))
    if SD_METADATA_KEY in chunks:
        return _from_sd_metadata(name, chunks, "")
    raise _no_metadata(name)


def _parameters(name: str, text: str) -> FetchedCommand:
    if text.startswith("{"):
        return _command(json_fetched(name, text))
    return _command(a1111_fetched(name, parse_a1111(text)))


def read_command(png_path: str | os.PathLike[str]) -> str:
    """The command of ``fetch`` alone.  Raises MetadataError as ``fetch`` does."""
    return fetch(png_path).command


def read_metadata(png_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The image's sd-metadata as a dict; for an A1111 image (no sd-metadata) its parameters
    taken apart: ``{"parameters": {"prompt", "negative_prompt", <A1111 field>: text...}}``
    (JSON parameters, as Fooocus and SwarmUI write them: ``{"parameters": <that JSON>}``).

    Raises MetadataError as ``read_command`` does.
    """
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    if SD_METADATA_KEY in chunks:
        return load_json(name, chunks[SD_METADATA_KEY])
    text = chunks.get(PARAMETERS_KEY, "").strip()
    if text.startswith("{"):  # Fooocus, SwarmUI, ...: JSON settings
        try:
            found = json.loads(text)
        except json.JSONDecodeError as error:
            raise MetadataError(f"{name}: its parameters chunk looks like JSON but is not valid "
                                f"({error.msg})") from None
        return {"parameters": found}
    if text:
        parsed = parse_a1111(chunks[PARAMETERS_KEY])
        return {"parameters": {"prompt": parsed.prompt, "negative_prompt": parsed.negative,
                               **parsed.fields}}
    raise _no_metadata(name)


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
