"""InvokeAI's two chunks, both ways: the ``Dream`` command and the ``sd-metadata`` JSON.

* ``Dream``: the normalised command (format.format_command); read back exactly, so ``!fetch``
  round-trips.  The reference's grid images end it with a comment ``# [seeds]``, dropped on
  reading.  A grid's ``Dream`` is the command of the whole command (``-S base -n N -g``, see
  ``grid_command``): ``-n`` derives every image's seed reproducibly from ``-S``.
* ``sd-metadata``: InvokeAI 2.0's JSON (model, model_id, model_hash, app_id, app_version, then
  ``image``).  Unlike the reference it records what ran: the real size, the sampler that ran
  (the reference wrote ``ddim`` for every img2img image) and the sigma ``schedule``
  (model|karras|exponential), and the opt-in accelerators that were on (``deepcache``,
  ``tome``).  A grid carries ``images``, one entry per seed, as the reference did.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dreamline import APP_ID, __version__
from dreamline import samplers as sampler_table
from dreamline.format import format_command
from dreamline.pngmeta.chunks import (
    DREAM_KEY,
    SD_METADATA_KEY,
    MetadataError,
    load_json,
)
from dreamline.pngmeta.fields import as_dict, number_text, ran, request_and_info
from dreamline.prompts import escape_weights, split_prompt
from dreamline.request import SCHEDULES, Request, RequestError, validate

_REFERENCE_GRID_COMMENT = re.compile(r"\s+#\s*\[[\d,\s]*\]\s*$")


# ---- writing ----------------------------------------------------------------------------------

def _v2_text(text: str) -> str:
    """A sub-prompt's text for InvokeAI 2.x, which reads every colon as a weight separator
    unless it is escaped (``\\:``)."""
    return text.replace(":", "\\:")


def v2_prompt(request: Request) -> list[dict[str, Any]]:
    """sd-metadata's ``prompt`` as InvokeAI 2.x wrote it: ``[{"prompt", "weight"}]`` with the
    negative words inside the (last) prompt text as ``[...]``, since 2.x readers know no
    separate negative key; colons in the text are escaped."""
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    entries = [{"prompt": _v2_text(text), "weight": weight} for text, weight in parts.positive]
    if parts.negative:
        last = entries[-1]
        last["prompt"] = f"{last['prompt']} [{parts.negative}]".strip()
    return entries


def image_fields(request: Request, run_info: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The ``image`` object of sd-metadata for one image, with InvokeAI 2.x's keys (``prompt``
    list with the negative in ``[...]``, ``init_img``, ``strength_steps``, ``orig_hash``,
    ``init_mask``) plus what ran (``schedule``, ``steps_run``, ``start_step``,
    ``prediction_type``)."""
    info = as_dict(run_info)
    fields: dict[str, Any] = {
        "type": "img2img" if request.is_img2img else "txt2img",
        "prompt": v2_prompt(request),
        "seed": request.seed,
        "variations": [{"seed": seed, "weight": weight}
                       for seed, weight in request.with_variations],
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "width": ran(info, "width", request.width),
        "height": ran(info, "height", request.height),
        "sampler": ran(info, "sampler", request.sampler),
        "schedule": ran(info, "schedule", request.sigma_schedule),
        "seamless": request.seamless,
    }
    if request.is_img2img:
        strength = ran(info, "strength", request.strength)
        fields.update({
            "init_img": request.init_img,
            "strength": strength,          # what 2.x's !fetch reads
            "strength_steps": strength,    # what 2.x wrote
            "orig_hash": info.get("init_hash"),
            "fit": request.fit,
            "init_mask": request.init_mask,
            "invert_mask": request.invert_mask,
        })
    fields.update(accelerator_fields(request))
    for key in ("steps_run", "start_step", "prediction_type"):
        if info.get(key) is not None:
            fields[key] = info[key]
    if info.get("loras"):
        fields["loras"] = [{"name": name, "weight": weight, "hash": digest}
                           for name, weight, digest in info["loras"]]
    if info.get("vae_name"):
        fields["vae"] = {"name": info["vae_name"], "hash": info.get("vae_hash")}
    if info.get("embeddings"):  # not an InvokeAI 2.x key (2.x recorded none); its readers skip it
        fields["embeddings"] = [{"name": name, "hash": digest}
                                for name, digest in info["embeddings"]]
    return fields


def accelerator_fields(request: Request) -> dict[str, Any]:
    """The opt-in accelerators that changed the pixels (``deepcache``: N, ``tome``: ratio),
    only those that were on; shared by sd-metadata and invokeai_metadata."""
    on: dict[str, Any] = {}
    if request.deepcache != 1:
        on["deepcache"] = request.deepcache
    if request.tome != 0:
        on["tome"] = request.tome
    return on


def sd_metadata(request: Request | Any, run_info: Mapping[str, Any] | Any | None = None,
                model_name: str | None = None, model_hash: str | None = None) -> dict[str, Any]:
    """InvokeAI 2.x-style metadata for one image (``model_weights`` names the model, as 2.3
    wrote it).  ``request`` is the one that reproduces exactly this image; ``run_info`` (RunInfo
    or dict) says what ran; or pass one GeneratedImage.  Model name and hash default to
    run_info's ``model_name`` / ``model_hash``."""
    request, info = request_and_info(request, run_info)
    return {
        "model": "stable diffusion",
        "model_weights": model_name if model_name is not None else info.get("model_name"),
        "model_hash": model_hash if model_hash is not None else info.get("model_hash"),
        "app_id": APP_ID,
        "app_version": __version__,
        "image": image_fields(request, info),
    }


def grid_metadata(per_image: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A grid's sd-metadata: the first image's top level, and ``images`` listing every image.

    Raises ValueError for an empty sequence (a programming error, not a user's).
    """
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


# ---- reading ----------------------------------------------------------------------------------

def is_ours(name: str, chunks: Mapping[str, str]) -> bool:
    """Whether the image's sd-metadata says dreamline wrote it."""
    if SD_METADATA_KEY not in chunks:
        return False
    try:
        return load_json(name, chunks[SD_METADATA_KEY]).get("app_id") == APP_ID
    except MetadataError:
        return False


def dream_command(name: str, chunks: Mapping[str, str]) -> str | None:
    """The ``Dream`` chunk's command (ours exactly; the reference's without its grid comment),
    or None when there is no non-empty ``Dream`` chunk."""
    command = chunks.get(DREAM_KEY, "").strip()
    if not command:
        return None
    if is_ours(name, chunks):
        return chunks[DREAM_KEY]
    return _REFERENCE_GRID_COMMENT.sub("", command)


def _v2_literal(text: str) -> str:
    """A 2.x sub-prompt text (``\\:`` escapes, ``[negative]`` words) in our syntax."""
    return escape_weights(text.replace("\\:", ":"))


def _wrong(name: str, field: str, value: Any, expected: str) -> MetadataError:
    return MetadataError(f"{name}: its sd-metadata {field} {value!r} is not {expected}")


def _sd_prompt(name: str, image: Mapping[str, Any]) -> str:
    """Rebuild a dream prompt from sd-metadata's ``prompt`` list (a string in some versions).
    InvokeAI 2.x keeps the negative words inside the text as ``[...]``; dreamline files before
    that wrote a separate ``negative_prompt``, which is still read.  A value of the wrong type
    is a MetadataError naming the file, the field and the value."""
    prompt = image.get("prompt", "")
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list):
        parts = [_sd_part(name, part) for part in prompt]
        if len(parts) == 1:
            text = _v2_literal(parts[0][0])
        else:
            text = " ".join(f"{_v2_literal(t)}:{number_text(w)}" for t, w in parts)
    else:
        raise _wrong(name, "prompt", prompt, "text or a list of {prompt, weight} entries")
    negative = image.get("negative_prompt") or ""
    if not isinstance(negative, str):
        raise _wrong(name, "negative_prompt", negative, "text")
    return f"{text} [{negative}]" if negative else text


def _sd_part(name: str, part: Any) -> tuple[str, float]:
    """One ``{"prompt": text, "weight": number}`` entry of sd-metadata's prompt list."""
    if not isinstance(part, Mapping):
        raise _wrong(name, "prompt entry", part, "a {prompt, weight} object")
    text, weight = part.get("prompt", ""), part.get("weight", 1.0)
    if not isinstance(text, str):
        raise _wrong(name, "prompt", text, "text")
    if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
        raise _wrong(name, "prompt weight", weight, "a number")
    try:
        return text, float(weight)
    except ValueError:
        raise _wrong(name, "prompt weight", weight, "a number") from None


def _variations(name: str, variations: Any) -> tuple[tuple[int, float], ...]:
    """sd-metadata's ``variations``: a list of ``{"seed": int, "weight": number}``."""
    if not isinstance(variations, list):
        raise _wrong(name, "variations", variations, "a list of {seed, weight} entries")
    pairs: list[tuple[int, float]] = []
    for entry in variations:
        if not isinstance(entry, Mapping) or "seed" not in entry or "weight" not in entry:
            raise _wrong(name, "variation", entry, "a {seed, weight} object")
        seed, weight = entry["seed"], entry["weight"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _wrong(name, "variation seed", seed, "a whole number")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise _wrong(name, "variation weight", weight, "a number")
        pairs.append((seed, float(weight)))
    return tuple(pairs)


def _init_changes(name: str, image: Mapping[str, Any]) -> dict[str, Any]:
    """The img2img settings of an sd-metadata image (none without an init image)."""
    init = image.get("init_img", image.get("init_image"))
    if not init:
        return {}
    if not isinstance(init, str):
        raise _wrong(name, "init_img", init, "a file name")
    changes: dict[str, Any] = {"init_img": init, "fit": bool(image.get("fit", False)),
                               "invert_mask": bool(image.get("invert_mask", False))}
    strength = image.get("strength", image.get("strength_steps"))
    if strength is not None:
        changes["strength"] = strength
    mask = image.get("init_mask", image.get("mask"))
    if mask and not isinstance(mask, str):
        raise _wrong(name, "init_mask", mask, "a file name")
    if mask:
        changes["init_mask"] = mask
    return changes


def sd_metadata_request(name: str, metadata: Mapping[str, Any]) -> Request:
    """The Request an sd-metadata dict describes; a grid (``images``) gives ``-n N -g``.

    Raises MetadataError (naming the file ``name``) when it describes no valid command.
    """
    images = metadata.get("images")
    count = 1  # a grid's -n
    if isinstance(images, list) and images:
        image, grid, count = images[0], True, len(images)
    else:
        image, grid = metadata.get("image"), False
    if not isinstance(image, Mapping):
        raise MetadataError(f"{name}: its sd-metadata has no 'image' entry")
    changes: dict[str, Any] = {"prompt": _sd_prompt(name, image)}
    for key in ("steps", "seed", "width", "height", "cfg_scale"):
        if image.get(key) is not None:
            changes[key] = image[key]
    sampler = image.get("sampler")
    found = sampler_table.resolve(str(sampler)) if sampler else None
    if found is not None:
        changes["sampler"] = found[0]
    if image.get("schedule") == "karras":
        changes["karras"] = True
    elif image.get("schedule") in SCHEDULES:
        changes["schedule"] = image["schedule"]
    try:
        changes["with_variations"] = _variations(name, image.get("variations") or [])
        changes.update(_init_changes(name, image))
        if image.get("seamless"):
            changes["seamless"] = True
        changes.update({key: image[key] for key in ("deepcache", "tome")  # accelerators
                        if image.get(key) is not None})
        if grid:
            changes["iterations"], changes["grid"] = count, True
        return validate(Request(**changes))
    except (RequestError, TypeError, ValueError, KeyError) as error:
        raise MetadataError(f"{name}: its sd-metadata does not describe a valid command "
                            f"({error})") from error
