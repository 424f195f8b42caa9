"""NovelAI: the ``Comment`` JSON (settings) and ``Description`` (prompt) as a Request."""

from __future__ import annotations

from collections.abc import Mapping

from dreamline.pngmeta.chunks import load_json
from dreamline.pngmeta.readers.common import Collector, Fetched
from dreamline.pngmeta.readers.prompt_syntax import lost_note, translate


def is_novelai(chunks: Mapping[str, str]) -> bool:
    """Whether the chunks are NovelAI's (``Software: NovelAI`` and a JSON ``Comment``)."""
    return (chunks.get("Software", "").strip() == "NovelAI"
            and chunks.get("Comment", "").lstrip().startswith("{"))


def novelai_fetched(name: str, chunks: Mapping[str, str]) -> Fetched:
    """The Request a NovelAI image's chunks describe, with notes.

    Raises MetadataError naming the file for a broken Comment or settings dreamline cannot run.
    """
    data = load_json(name, chunks["Comment"], "NovelAI Comment")
    collector = Collector(name, "NovelAI")
    positive = str(data.get("prompt") or chunks.get("Description", ""))
    negative = str(data.get("uc") or "")
    prompt = translate(positive, negative, style="novelai", and_parts=False)
    collector.changes["prompt"] = prompt.prompt
    for what in prompt.unrun:
        collector.skip(what)
    if data.get("seed") is not None:
        collector.seed(data["seed"])
    if data.get("steps") is not None:
        collector.number("steps", data["steps"], int)
    if data.get("scale") is not None:
        collector.number("cfg_scale", data["scale"])
    if data.get("width") is not None and data.get("height") is not None:
        collector.size(data["width"], data["height"])
    else:
        collector.note("size not recorded; the command uses the model's default size")
    sampler = data.get("sampler")
    collector.sampler(str(sampler) if sampler is not None else None,
                      str(data.get("noise_schedule") or "native"))
    if data.get("strength") is not None and data.get("strength") != 1:
        collector.note(f"an image-to-image run (strength {data['strength']}) whose init image "
                       "is not stored; the command is txt2img")
    source = chunks.get("Source", "")
    if source and not source.startswith("Stable Diffusion "):
        collector.note(f"made with {source}; dreamline runs SD 1.x models")
    for key in ("v4_prompt", "reference_image_multiple", "director_reference_images"):
        value = data.get(key)
        if key == "v4_prompt" and isinstance(value, Mapping):
            captions = value.get("caption", {})
            if isinstance(captions, Mapping) and captions.get("char_captions"):
                collector.skip("character prompts")
        elif value:
            collector.skip("reference images")
    note = lost_note(prompt.lost, "NovelAI")
    if note:
        collector.notes.append(note)
    return collector.finish()
