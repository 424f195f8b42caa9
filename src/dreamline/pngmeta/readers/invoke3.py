"""InvokeAI 3.x and later: ``invokeai_metadata`` JSON as a Request plus notes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamline.pngmeta.chunks import load_json
from dreamline.pngmeta.invoke3 import KARRAS, SCHEDULERS
from dreamline.pngmeta.readers.common import Collector, Fetched
from dreamline.pngmeta.readers.prompt_syntax import lost_note, translate

_THEIRS = {invoke: comfy for comfy, invoke in SCHEDULERS.items()}
# Keys that say nothing about the pixels, or that are read below.
_READ = {"generation_mode", "positive_prompt", "negative_prompt", "width", "height", "seed",
         "rand_device", "cfg_scale", "steps", "scheduler", "model", "app_version", "strength",
         "init_image", "seamless_x", "seamless_y", "positive_style_prompt",
         "negative_style_prompt", "clip_skip", "cfg_rescale_multiplier", "vae", "loras",
         "regions", "canvas_v2_metadata", "ref_images", "_canvas_objects", "deepcache", "tome"}


def _scheduler(collector: Collector, name: Any) -> None:
    text = str(name or "")
    karras = text in KARRAS
    base = text[:-2] if karras else text
    comfy = _THEIRS.get(base)
    collector.sampler(comfy if comfy is not None else (text or None),
                      "karras" if karras else "normal")


def invoke3_fetched(name: str, text: str) -> Fetched:
    """The Request an ``invokeai_metadata`` chunk describes, with notes.

    Raises MetadataError naming the file for broken JSON or settings dreamline cannot run.
    """
    data = load_json(name, text, "invokeai_metadata")
    collector = Collector(name, "InvokeAI")
    prompt = translate(str(data.get("positive_prompt") or ""),
                       str(data.get("negative_prompt") or ""), style="compel", and_parts=False)
    collector.changes["prompt"] = prompt.prompt
    for what in prompt.unrun:
        collector.skip(what)
    if data.get("seed") is not None:
        collector.seed(data["seed"])
    for field, key, kind in (("steps", "steps", int), ("cfg_scale", "cfg_scale", float)):
        if data.get(key) is not None:
            collector.number(field, data[key], kind)
    if data.get("width") is not None and data.get("height") is not None:
        collector.size(data["width"], data["height"])
    _scheduler(collector, data.get("scheduler"))
    if data.get("seamless_x") or data.get("seamless_y"):
        collector.changes["seamless"] = True
    if data.get("deepcache") is not None:  # dreamline's own files
        collector.number("deepcache", data["deepcache"], int)
    if data.get("tome") is not None:
        collector.number("tome", data["tome"])
    _init_image(collector, data)
    _model_note(collector, data.get("model"))
    for key in ("loras", "vae", "clip_skip", "regions", "ref_images"):
        if data.get(key):
            collector.skip(key.replace("_", " "))
    for key, value in data.items():
        if key not in _READ and value not in (None, [], {}, "", False):
            collector.skip(key)
    note = lost_note(prompt.lost, "InvokeAI")
    if note:
        collector.notes.append(note)
    return collector.finish()


def _init_image(collector: Collector, data: Mapping[str, Any]) -> None:
    """img2img, inpaint and outpaint images: the init image's name and strength, when recorded."""
    mode = str(data.get("generation_mode", ""))
    if "img2img" not in mode and "inpaint" not in mode and "outpaint" not in mode:
        return
    init = data.get("init_image")
    if isinstance(init, Mapping):
        init = init.get("image_name")
    if isinstance(init, str) and init:
        collector.changes["init_img"] = init
        if data.get("strength") is not None:
            collector.number("strength", data["strength"])
    else:
        collector.note(f"a {mode} image whose init image is not recorded; the command is txt2img")


def _model_note(collector: Collector, model: Any) -> None:
    """A note when the image was made with a model of another family than SD 1.x."""
    if not isinstance(model, Mapping):
        return
    base = model.get("base", model.get("base_model"))
    if base not in (None, "sd-1"):
        named = model.get("name", model.get("model_name"))
        collector.note(f"made with a {base} model ({named}); dreamline runs SD 1.x models")
