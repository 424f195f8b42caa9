"""PNG text chunks: what dreamline writes into each image, and reading any image's command back.

Every image carries three text chunks (tEXt, or iTXt when the text is not Latin-1):

* ``Dream``: the normalised command (format.format_command); ``read_command`` gives it back
  exactly, so ``!fetch`` round-trips.
* ``sd-metadata``: InvokeAI 2.0's JSON (model, model_id, model_hash, app_id, app_version, then
  ``image``).  Unlike the reference it records what ran: the real size, the sampler that ran
  (the reference wrote ``ddim`` for every img2img image) and the sigma ``schedule``
  (model|karras).  A grid carries ``images``, one entry per seed, as the reference did.
* ``parameters``: AUTOMATIC1111's text, so A1111-aware tools show the prompt and settings.

Reading back, in this order: a ``Dream`` chunk (ours, or the reference's with its grid comment
``# [seeds]`` dropped), else an A1111 ``parameters`` chunk converted to a dream command, else an
``sd-metadata`` chunk alone converted the same way; an image with none of them is an error.

A grid's ``Dream`` is the command of the whole command (``-S base -n N -g``, see
``grid_command``): ``-n`` derives every image's seed reproducibly from ``-S``, so running it
again rebuilds every image and the grid.

A1111 conversion is necessarily approximate: its attention syntax has no equivalent here, so
square brackets are dropped (``[x]`` is a negative prompt in dreamline but a mild de-emphasis in
A1111), colons that would read as our ``text:weight`` separators are escaped, ``AND`` parts become
``text:weight`` sub-prompts, and the init image of an A1111 img2img is not stored, so its command
is txt2img.  A1111 samplers without a dreamline equivalent (DPM++ ...) are an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from PIL import Image, UnidentifiedImageError

from dreamline import APP_ID, __version__
from dreamline import samplers as sampler_table
from dreamline.errors import DreamlineError
from dreamline.format import format_command
from dreamline.prompts import escape_weights, split_prompt
from dreamline.request import SAMPLERS, Request, RequestError, validate

DREAM_KEY = "Dream"
SD_METADATA_KEY = "sd-metadata"
PARAMETERS_KEY = "parameters"


# A1111's own field pattern (modules/generation_parameters_copypaste.py): name: value, where a
# value holding ',' ':' or a newline is JSON-quoted.
_A1111_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_REFERENCE_GRID_COMMENT = re.compile(r"\s+#\s*\[[\d,\s]*\]\s*$")
_AND = re.compile(r"\s+AND\s+")
_A1111_WEIGHT = re.compile(r"^(?P<text>.*?)\s*:\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$",
                           re.DOTALL)


class MetadataError(DreamlineError):
    """An image has no usable generation metadata, or metadata that cannot be read."""


# ---- writing ----------------------------------------------------------------------------------

def _as_dict(run_info: Mapping[str, Any] | Any) -> dict[str, Any]:
    """RunInfo arrives as a dataclass from core/ or as a plain dict from tests and tools."""
    if dataclasses.is_dataclass(run_info) and not isinstance(run_info, type):
        return {field.name: getattr(run_info, field.name)
                for field in dataclasses.fields(run_info)}
    return dict(run_info)


def _ran(info: Mapping[str, Any], key: str, requested: Any) -> Any:
    """What really ran when core/ reported it, else what was requested."""
    value = info.get(key)
    return requested if value is None else value


def _number(value: float) -> str:
    """Shortest exact text: '7' for 7.0, repr otherwise ('0.75', '0.3333333333333333')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def image_fields(request: Request, run_info: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The ``image`` object of sd-metadata for one image (RFC 266 names, plus what ran)."""
    info = _as_dict(run_info)
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    fields: dict[str, Any] = {
        "type": "img2img" if request.is_img2img else "txt2img",
        "prompt": [{"prompt": text, "weight": weight} for text, weight in parts.positive],
        "negative_prompt": parts.negative,
        "seed": request.seed,
        "variations": [{"seed": seed, "weight": weight}
                       for seed, weight in request.with_variations],
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "width": _ran(info, "width", request.width),
        "height": _ran(info, "height", request.height),
        "sampler": _ran(info, "sampler", request.sampler),
        "schedule": _ran(info, "schedule", "karras" if request.karras else "model"),
        "seamless": request.seamless,
    }
    if request.is_img2img:
        fields.update({
            "strength": _ran(info, "strength", request.strength),
            "init_image": request.init_img,
            "init_image_hash": info.get("init_hash"),
            "fit": request.fit,
            "mask": request.init_mask,
            "invert_mask": request.invert_mask,
        })
    for key in ("steps_run", "start_step"):
        if info.get(key) is not None:
            fields[key] = info[key]
    return fields


def _request_and_info(request: Request | Any, run_info: Mapping[str, Any] | Any | None
                      ) -> tuple[Request, dict[str, Any]]:
    """Accept (Request, RunInfo/dict) or one GeneratedImage-like object (``.request``,
    ``.info``), so the runner can pass what core/ hands it without unpacking."""
    if run_info is None:
        if isinstance(request, Request):
            return request, {}
        return request.request, _as_dict(request.info)
    return request, _as_dict(run_info)


def sd_metadata(request: Request | Any, run_info: Mapping[str, Any] | Any | None = None,
                model_name: str | None = None, model_hash: str | None = None) -> dict[str, Any]:
    """InvokeAI 2.0-style metadata for one image.  ``request`` is the one that reproduces
    exactly this image; ``run_info`` (RunInfo or dict) says what ran; or pass one
    GeneratedImage.  Model name and hash default to run_info's ``model_name`` / ``model_hash``."""
    request, info = _request_and_info(request, run_info)
    return {
        "model": "stable diffusion",
        "model_id": model_name if model_name is not None else info.get("model_name"),
        "model_hash": model_hash if model_hash is not None else info.get("model_hash"),
        "app_id": APP_ID,
        "app_version": __version__,
        "image": image_fields(request, info),
    }


def grid_metadata(per_image: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A grid's sd-metadata: the first image's top level, and ``images`` listing every image."""
    if not per_image:
        raise ValueError("a grid needs the metadata of at least one image")
    top = {key: value for key, value in per_image[0].items() if key != "image"}
    top["images"] = [dict(entry["image"]) for entry in per_image]
    return top


def grid_command(request: Request, base_seed: int, count: int) -> str:
    """The command that rebuilds a whole grid: the command's own request with its base seed,
    ``-n count -g`` (every image's seed derives from -S, see dream-cli.md section 1)."""
    return format_command(validate(dataclasses.replace(
        request, seed=base_seed, iterations=count, grid=True)))


def _a1111_value(text: str) -> str:
    """A1111's quote(): JSON-quote a value that holds ',', ':' or a newline."""
    if "," in text or ":" in text or "\n" in text or '"' in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def a1111_sampler(sampler: str, schedule: str) -> str:
    """A1111's name for one of our samplers: 'Euler a', 'LMS Karras', ..."""
    return sampler_table.a1111_name(sampler, schedule)


def a1111_parameters(request: Request | Any, run_info: Mapping[str, Any] | Any | None = None,
                     model_name: str | None = None, model_hash: str | None = None) -> str:
    """AUTOMATIC1111's ``parameters`` text: prompt, ``Negative prompt:``, then one settings line.

    Several sub-prompts are written in A1111's ``text :weight AND ...`` syntax.  A1111 has one
    variation seed, so ``Variation seed`` is written only when there is exactly one.  Takes the
    same arguments as ``sd_metadata``.
    """
    request, info = _request_and_info(request, run_info)
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    if len(parts.positive) == 1 and parts.positive[0][1] == 1.0:
        positive = parts.positive[0][0]
    else:
        positive = " AND ".join(f"{text} :{_number(weight)}" for text, weight in parts.positive)
    lines = [positive]
    if parts.negative:
        lines.append(f"Negative prompt: {parts.negative}")
    width = _ran(info, "width", request.width)
    height = _ran(info, "height", request.height)
    name = model_name if model_name is not None else info.get("model_name")
    digest = model_hash if model_hash is not None else info.get("model_hash")
    schedule = _ran(info, "schedule", "karras" if request.karras else "model")
    settings: list[tuple[str, Any]] = [
        ("Steps", request.steps),
        ("Sampler", a1111_sampler(_ran(info, "sampler", request.sampler), schedule)),
        ("CFG scale", _number(request.cfg_scale)),
        ("Seed", request.seed),
        ("Size", f"{width}x{height}" if width is not None and height is not None else None),
        ("Model hash", digest),
        ("Model", name),
    ]
    if request.is_img2img:
        settings.append(("Denoising strength",
                         _number(_ran(info, "strength", request.strength))))
    if len(request.with_variations) == 1:
        seed, weight = request.with_variations[0]
        settings += [("Variation seed", seed), ("Variation seed strength", _number(weight))]
    if request.seamless:
        settings.append(("Tiling", "True"))
    lines.append(", ".join(f"{key}: {_a1111_value(str(value))}"
                           for key, value in settings if value is not None))
    return "\n".join(lines)


def metadata_chunks(command: str, metadata: Mapping[str, Any] | None = None,
                    parameters: str | None = None) -> dict[str, str]:
    """The text chunks of one PNG, in writing order."""
    chunks = {DREAM_KEY: command}
    if metadata is not None:
        chunks[SD_METADATA_KEY] = json.dumps(metadata)
    if parameters is not None:
        chunks[PARAMETERS_KEY] = parameters
    return chunks


# ---- reading ----------------------------------------------------------------------------------

def read_text_chunks(png_path: str | os.PathLike[str]) -> dict[str, str]:
    """Every text chunk of an image (tEXt, zTXt and iTXt alike), as {key: text}."""
    name = os.fspath(png_path)
    try:
        with Image.open(name) as image:
            text = getattr(image, "text", None)  # PNG: includes chunks after the pixel data
            found = text if text is not None else image.info
            return {str(key): str(value) for key, value in found.items()
                    if isinstance(value, str)}
    except FileNotFoundError as error:
        raise MetadataError(f"{name}: no such file; expected an image written by dreamline") \
            from error
    except IsADirectoryError as error:
        raise MetadataError(f"{name}: is a directory; expected a PNG file") from error
    except UnidentifiedImageError as error:
        raise MetadataError(f"{name}: not an image; expected a PNG file") from error
    except OSError as error:
        raise MetadataError(f"{name}: cannot be read: {error.strerror or error}") from error


def _no_metadata(name: str) -> MetadataError:
    return MetadataError(f"{name}: has no generation metadata; expected a PNG with a 'Dream', "
                         "'sd-metadata' or A1111 'parameters' text chunk")


def _load_json(name: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{name}: its sd-metadata chunk is not valid JSON ({error.msg})") \
            from error
    if not isinstance(data, dict):
        raise MetadataError(f"{name}: its sd-metadata chunk is not a JSON object")
    return data


class A1111Parameters(NamedTuple):
    """A1111's ``parameters`` text taken apart: prompt, negative prompt, settings by name."""

    prompt: str
    negative: str
    fields: dict[str, str]


def parse_a1111(text: str) -> A1111Parameters:
    """Split A1111's text the way A1111 does: the last line holds the settings (when it has at
    least three ``name: value`` pairs), lines from ``Negative prompt:`` on the negative."""
    *lines, last = text.strip().split("\n")
    if len(_A1111_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    fields: dict[str, str] = {}
    for key, value in _A1111_FIELD.findall(last):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        fields[key.strip()] = str(value)
    return A1111Parameters(" ".join(prompt).strip(), " ".join(negative).strip(), fields)


def _plain_text(text: str) -> str:
    """A1111 prompt text made literal for our syntax: no brackets, weight-like colons escaped."""
    return escape_weights(" ".join(text.replace("[", " ").replace("]", " ").split()))


def a1111_prompt(parameters: A1111Parameters) -> str:
    """The dream prompt for A1111's prompt and negative prompt (see the module notes)."""
    parts = _AND.split(parameters.prompt) if parameters.prompt else []
    if len(parts) > 1:
        words = []
        for part in parts:
            match = _A1111_WEIGHT.match(part)
            text, weight = (match.group("text"), match.group("weight")) if match else (part, "1")
            words.append(f"{_plain_text(text)}:{weight}")
        positive = " ".join(words)
    else:
        positive = _plain_text(parameters.prompt)
    negative = " ".join(parameters.negative.replace("[", " ").replace("]", " ").split())
    return f"{positive} [{negative}]" if negative else positive


def _sampler_from_a1111(name: str, value: str, fields: Mapping[str, str]) -> tuple[str, bool]:
    found = sampler_table.resolve(value)
    if found is None:
        known = ", ".join(spec.a1111 for spec in sampler_table.TABLE)
        raise MetadataError(f"{name}: A1111 sampler {value!r} has no dreamline equivalent; "
                            f"expected one of {known} (optionally with ' Karras')")
    ours, schedule = found
    karras = schedule == "karras" or fields.get("Schedule type", "").strip().lower() == "karras"
    return ours, karras


def a1111_request(name: str, parameters: A1111Parameters) -> Request:
    """The Request closest to an A1111 image's settings (txt2img: A1111 keeps no init path)."""
    fields = parameters.fields
    changes: dict[str, Any] = {"prompt": a1111_prompt(parameters)}
    try:
        if "Steps" in fields:
            changes["steps"] = int(fields["Steps"])
        if "CFG scale" in fields:
            changes["cfg_scale"] = float(fields["CFG scale"])
        if "Seed" in fields:
            changes["seed"] = int(fields["Seed"])
        if "Size" in fields:
            width, _, height = fields["Size"].lower().partition("x")
            changes["width"], changes["height"] = int(width), int(height)
        if "Variation seed" in fields and "Variation seed strength" in fields:
            weight = float(fields["Variation seed strength"])
            if weight > 0:
                changes["with_variations"] = ((int(fields["Variation seed"]), weight),)
    except ValueError as error:
        raise MetadataError(f"{name}: A1111 parameters hold a value that is not a number "
                            f"({error})") from error
    if "Sampler" in fields:
        changes["sampler"], changes["karras"] = _sampler_from_a1111(name, fields["Sampler"],
                                                                    fields)
    if fields.get("Tiling", "").strip().lower() == "true":
        changes["seamless"] = True
    if changes.get("seed") is None:
        raise MetadataError(f"{name}: A1111 parameters have no Seed; expected 'Seed: <number>'")
    try:
        return validate(Request(**changes))
    except RequestError as error:
        raise MetadataError(f"{name}: A1111 parameters: {error}") from error


def _sd_prompt(image: Mapping[str, Any]) -> str:
    """Rebuild a dream prompt from sd-metadata's ``prompt`` list (a string in some versions)."""
    prompt = image.get("prompt", "")
    if isinstance(prompt, str):
        text = prompt
    else:
        parts = [(str(part.get("prompt", "")), float(part.get("weight", 1.0))) for part in prompt]
        if len(parts) == 1:
            text = escape_weights(parts[0][0])
        else:
            text = " ".join(f"{escape_weights(t)}:{_number(w)}" for t, w in parts)
    negative = image.get("negative_prompt") or ""
    return f"{text} [{negative}]" if negative else text


def sd_metadata_request(name: str, metadata: Mapping[str, Any]) -> Request:
    """The Request an sd-metadata dict describes; a grid (``images``) gives ``-n N -g``."""
    images = metadata.get("images")
    if isinstance(images, list) and images:
        image, grid = images[0], True
    else:
        image, grid = metadata.get("image"), False
    if not isinstance(image, Mapping):
        raise MetadataError(f"{name}: its sd-metadata has no 'image' entry")
    changes: dict[str, Any] = {"prompt": _sd_prompt(image)}
    for key in ("steps", "seed", "width", "height", "cfg_scale"):
        if image.get(key) is not None:
            changes[key] = image[key]
    sampler = image.get("sampler")
    if sampler in SAMPLERS:
        changes["sampler"] = sampler
    if image.get("schedule") == "karras":
        changes["karras"] = True
    variations = image.get("variations") or []
    changes["with_variations"] = tuple((int(v["seed"]), float(v["weight"])) for v in variations)
    init = image.get("init_image")
    if init:
        changes["init_img"] = str(init)
        strength = image.get("strength", image.get("strength_steps"))
        if strength is not None:
            changes["strength"] = strength
        changes["fit"] = bool(image.get("fit", False))
        if image.get("mask"):
            changes["init_mask"] = str(image["mask"])
        changes["invert_mask"] = bool(image.get("invert_mask", False))
    if image.get("seamless"):
        changes["seamless"] = True
    if grid:
        changes["iterations"], changes["grid"] = len(images), True
    try:
        return validate(Request(**changes))
    except (RequestError, TypeError, ValueError, KeyError) as error:
        raise MetadataError(f"{name}: its sd-metadata does not describe a valid command "
                            f"({error})") from error


def read_command(png_path: str | os.PathLike[str]) -> str:
    """The dream command that reproduces the image (a grid: the whole grid)."""
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    command = chunks.get(DREAM_KEY, "").strip()
    if command:
        if _is_ours(name, chunks):
            return chunks[DREAM_KEY]
        return _REFERENCE_GRID_COMMENT.sub("", command)
    if chunks.get(PARAMETERS_KEY, "").strip():
        return format_command(a1111_request(name, parse_a1111(chunks[PARAMETERS_KEY])))
    if SD_METADATA_KEY in chunks:
        return format_command(sd_metadata_request(name, _load_json(name, chunks[SD_METADATA_KEY])))
    raise _no_metadata(name)


def _is_ours(name: str, chunks: Mapping[str, str]) -> bool:
    if SD_METADATA_KEY not in chunks:
        return False
    try:
        return _load_json(name, chunks[SD_METADATA_KEY]).get("app_id") == APP_ID
    except MetadataError:
        return False


def read_metadata(png_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The image's sd-metadata as a dict; for an A1111 image (no sd-metadata) its parameters
    taken apart: ``{"parameters": {"prompt", "negative_prompt", <A1111 field>: text...}}``."""
    name = os.fspath(png_path)
    chunks = read_text_chunks(name)
    if SD_METADATA_KEY in chunks:
        return _load_json(name, chunks[SD_METADATA_KEY])
    if chunks.get(PARAMETERS_KEY, "").strip():
        parsed = parse_a1111(chunks[PARAMETERS_KEY])
        return {"parameters": {"prompt": parsed.prompt, "negative_prompt": parsed.negative,
                               **parsed.fields}}
    raise _no_metadata(name)


def read_prompt(png_path: str | os.PathLike[str]) -> str:
    """Just the prompt of the image's command (an empty prompt with -I reuses it)."""
    from dreamline.parse import parse_line

    name = os.fspath(png_path)
    command = read_command(name)
    try:
        return parse_line(command, Request()).request.prompt
    except DreamlineError as error:
        raise MetadataError(f"{name}: its stored command cannot be read back: {error}") \
            from error
