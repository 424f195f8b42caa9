"""AUTOMATIC1111's ``parameters`` text, both ways, so A1111-aware tools read our images and we
read theirs.

Writing: prompt, ``Negative prompt:``, then one ``name: value`` settings line.  Reading converts
to the closest dreamline Request, necessarily approximately: A1111's attention syntax has no
equivalent here, so square brackets are dropped (``[x]`` is a negative prompt in dreamline but a
mild de-emphasis in A1111), colons that would read as our ``text:weight`` separators are escaped,
``AND`` parts become ``text:weight`` sub-prompts, and the init image of an A1111 img2img is not
stored, so its command is txt2img.  A1111 samplers and schedule types without a dreamline
equivalent (DPM adaptive, Align Your Steps ...) are an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from dreamline import samplers as sampler_table
from dreamline.pngmeta.chunks import MetadataError
from dreamline.pngmeta.fields import number_text, ran, request_and_info
from dreamline.prompts import escape_weights, split_prompt
from dreamline.request import Request, RequestError, validate

# A1111's own field pattern (modules/generation_parameters_copypaste.py): name: value, where a
# value holding ',' ':' or a newline is JSON-quoted.
_A1111_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_AND = re.compile(r"\s+AND\s+")
_A1111_WEIGHT = re.compile(r"^(?P<text>.*?)\s*:\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$",
                           re.DOTALL)


# ---- writing ----------------------------------------------------------------------------------

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
    same arguments as ``pngmeta.invokeai.sd_metadata``.
    """
    request, info = request_and_info(request, run_info)
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    if len(parts.positive) == 1 and parts.positive[0][1] == 1.0:
        positive = parts.positive[0][0]
    else:
        positive = " AND ".join(f"{text} :{number_text(weight)}"
                                for text, weight in parts.positive)
    lines = [positive]
    if parts.negative:
        lines.append(f"Negative prompt: {parts.negative}")
    width = ran(info, "width", request.width)
    height = ran(info, "height", request.height)
    name = model_name if model_name is not None else info.get("model_name")
    digest = model_hash if model_hash is not None else info.get("model_hash")
    schedule = ran(info, "schedule", request.sigma_schedule)
    settings: list[tuple[str, Any]] = [
        ("Steps", request.steps),
        ("Sampler", a1111_sampler(ran(info, "sampler", request.sampler), schedule)),
        ("CFG scale", number_text(request.cfg_scale)),
        ("Seed", request.seed),
        ("Size", f"{width}x{height}" if width is not None and height is not None else None),
        ("Model hash", digest),
        ("Model", name),
    ]
    if request.is_img2img:
        settings.append(("Denoising strength",
                         number_text(ran(info, "strength", request.strength))))
    if len(request.with_variations) == 1:
        seed, weight = request.with_variations[0]
        settings += [("Variation seed", seed), ("Variation seed strength", number_text(weight))]
    if request.seamless:
        settings.append(("Tiling", "True"))
    lines.append(", ".join(f"{key}: {_a1111_value(str(value))}"
                           for key, value in settings if value is not None))
    return "\n".join(lines)


# ---- reading ----------------------------------------------------------------------------------

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


def _sampler_from_a1111(name: str, value: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The Request fields for A1111's Sampler (and Schedule type, written since A1111 1.9)."""
    found = sampler_table.resolve(value)
    if found is None:
        known = ", ".join(spec.a1111 for spec in sampler_table.TABLE)
        raise MetadataError(f"{name}: A1111 sampler {value!r} has no dreamline equivalent; "
                            f"expected one of {known} (optionally with ' Karras')")
    ours, schedule = found
    if "Schedule type" in fields:
        try:
            schedule = sampler_table.a1111_schedule(fields["Schedule type"], ours)
        except sampler_table.ScheduleNameError as error:
            raise MetadataError(f"{name}: {error}") from error
    if schedule == "karras":
        return {"sampler": ours, "karras": True}
    return {"sampler": ours, "schedule": schedule or "model"}


def a1111_request(name: str, parameters: A1111Parameters) -> Request:
    """The Request closest to an A1111 image's settings (txt2img: A1111 keeps no init path).

    Raises MetadataError (naming the file ``name``) for a missing seed, a value that is not a
    number, a sampler dreamline lacks, or settings outside dreamline's ranges.
    """
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
        changes.update(_sampler_from_a1111(name, fields["Sampler"], fields))
    if fields.get("Tiling", "").strip().lower() == "true":
        changes["seamless"] = True
    if changes.get("seed") is None:
        raise MetadataError(f"{name}: A1111 parameters have no Seed; expected 'Seed: <number>'")
    try:
        return validate(Request(**changes))
    except RequestError as error:
        raise MetadataError(f"{name}: A1111 parameters: {error}") from error
