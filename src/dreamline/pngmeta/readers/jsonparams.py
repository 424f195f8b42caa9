"""JSON settings written by Fooocus, RuinedFooocus, SwarmUI, Hugging Face spaces (in the
``parameters`` chunk A1111 uses for text) and Tensor.Art (``generation_data``), as a Request.

Each tool spells the same settings differently; the alias lists below cover the fixtures'
spellings.  Keys not read are named in the not-replayed note when they change the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dreamline.pngmeta.chunks import MetadataError, load_json
from dreamline.pngmeta.readers.common import Collector, Fetched
from dreamline.pngmeta.readers.prompt_syntax import lost_note, translate

_PROMPT = ("prompt", "Prompt", "positive_prompt")
_NEGATIVE = ("negative_prompt", "Negative", "negativeprompt", "negativePrompt",
             "negative prompt")
_STEPS = ("steps", "num_inference_steps", "Steps")
_CFG = ("guidance_scale", "cfg", "cfgscale", "cfg_scale", "cfgScale", "CFG scale")
_SAMPLER = ("sampler", "sampler_name", "ksamplerName", "Sampler")
_SCHEDULER = ("scheduler", "schedule", "Scheduler")
_SIZE = re.compile(r"(\d+)\D+(\d+)")
# Keys that change the image in ways dreamline does not run (substring match, lower case).
_FEATURES = (("refiner", "refiner"), ("lora", "LoRA"), ("upscale", "upscaling"),
             ("hires", "hires fix"), ("clip_skip", "clip skip"), ("clipskip", "clip skip"),
             ("adm_guidance", "ADM guidance"), ("sharpness", "sharpness"), ("styles", "styles"),
             ("controlnet", "ControlNet"))


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if data.get(key) not in (None, ""):
            return data[key]
    return None


def _tool(data: Mapping[str, Any], default: str) -> tuple[str, Mapping[str, Any]]:
    if isinstance(data.get("sui_image_params"), Mapping):
        return "SwarmUI", data["sui_image_params"]
    software = str(data.get("software", data.get("version", "")))
    if "fooocus" in software.lower() or "fooocus" in str(data.get("metadata_scheme", "")):
        return software.split()[0] if software else "Fooocus", data
    if "full_prompt" in data or "adm_guidance" in data:
        return "Fooocus", data
    return default, data


def _features(collector: Collector, data: Mapping[str, Any]) -> None:
    no_refiner = str(data.get("refiner_model", "x")) in ("None", "")
    for key, value in data.items():
        lowered = key.lower()
        if value in (None, [], {}, "", False, "None") or (no_refiner and "refiner" in lowered):
            continue
        if lowered in ("styles", "prompt_expansion") and "full_prompt" in data:
            continue  # already in the full prompt
        if lowered in ("clip_skip", "clipskip") and str(value) in ("1", "-1"):
            continue
        for part, what in _FEATURES:
            if part in lowered:
                collector.skip(what)
                break


def json_fetched(name: str, text: str, default_tool: str = "JSON parameters") -> Fetched:
    """The Request a JSON settings chunk describes, with notes.

    Raises MetadataError naming the file for broken JSON or settings dreamline cannot run.
    """
    outer = load_json(name, text, "parameters")
    tool, data = _tool(outer, default_tool)
    collector = Collector(name, tool)
    positive = collector.text("prompt", _first(data, _PROMPT))
    negative = collector.text("negative prompt", _first(data, _NEGATIVE))
    if isinstance(data.get("full_prompt"), list) and data["full_prompt"]:
        # what Fooocus really encoded: the prompt after its styles and prompt expansion
        positive = ", ".join(collector.text("full_prompt", text) for text in data["full_prompt"])
        full_negative = data.get("full_negative_prompt") or []
        if not isinstance(full_negative, list):
            raise MetadataError(f"{name}: {tool} full_negative_prompt {full_negative!r} is not "
                                "a list of texts")
        negative = ", ".join(collector.text("full_negative_prompt", text)
                             for text in full_negative)
        collector.note("the prompt is Fooocus's full prompt (its styles and prompt expansion "
                       "applied), written as one prompt")
    prompt = translate(positive, negative, style="comfyui", and_parts=False)
    collector.changes["prompt"] = prompt.prompt
    for what in prompt.unrun:
        collector.skip(what)
    if _first(data, ("seed",)) is not None:
        collector.seed(data["seed"])
    else:
        collector.note("no seed recorded; the command draws a new seed")
    if _first(data, _STEPS) is not None:
        collector.number("steps", _first(data, _STEPS), int)
    if _first(data, _CFG) is not None:
        collector.number("cfg_scale", _first(data, _CFG))
    if data.get("width") is not None and data.get("height") is not None:
        collector.size(data["width"], data["height"])
    else:
        found = _SIZE.search(str(data.get("resolution", "")))
        if found:
            collector.size(found.group(1), found.group(2))
        else:
            collector.note("size not recorded; the command uses the model's default size")
    scheduler = _first(data, _SCHEDULER)
    collector.sampler(_first(data, _SAMPLER), str(scheduler) if scheduler is not None else None)
    denoise = data.get("denoise", data.get("initimagecreativity"))
    if denoise not in (None, 1, 1.0):
        collector.note(f"an image-to-image run (denoise/creativity {denoise}) whose init image "
                       "is not recorded; the command is txt2img")
    _features(collector, data)
    note = lost_note(prompt.lost, tool)
    if note:
        collector.notes.append(note)
    return collector.finish()
