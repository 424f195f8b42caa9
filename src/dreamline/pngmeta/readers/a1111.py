"""AUTOMATIC1111 and its forks (Forge, reForge, SD.Next, Stability Matrix, ComfyUI save nodes):
the ``parameters`` text as a Request plus notes.

Field names are matched case-insensitively (``CFG Scale``).  ``Schedule type`` (A1111 1.9+) wins
over a sampler label's suffix; ``Automatic`` is the sampler's own default, which A1111 1.9+ makes
Karras for DPM2, DPM2 a, DPM++ 2M, DPM++ SDE and DPM++ 2S a.  A1111 keeps no init image, so an
img2img's command is txt2img (said in a note); ``Token merging ratio`` is ``--tome`` (A1111's
token merging is tomesd too) and our ``DeepCache`` field ``--deepcache``; everything else the
image used that dreamline does not run (hires fix, clip skip, ADetailer, refiner, LoRA, ...) is
named in one note.
"""

from __future__ import annotations

from collections.abc import Mapping

from dreamline.pngmeta.a1111 import A1111Parameters
from dreamline.pngmeta.readers.common import Collector, Fetched
from dreamline.pngmeta.readers.prompt_syntax import lost_note, translate
from dreamline.request import TOME_MAX

# A1111 1.9+ samplers whose "Automatic" schedule is Karras (modules/sd_samplers_kdiffusion.py).
_AUTOMATIC_KARRAS = {"dpm2", "dpm2 a", "dpm++ 2m", "dpm++ sde", "dpm++ 2s a", "restart"}
_AUTOMATIC_EXPONENTIAL = {"dpm++ 2m sde", "dpm++ 2m sde heun", "dpm++ 3m sde"}
# Settings that say nothing about the image's pixels (or that are read elsewhere).
_HARMLESS = {"steps", "sampler", "schedule type", "cfg scale", "seed", "size", "model hash",
             "model", "version", "rng", "app", "pipeline", "operations", "vae", "vae hash",
             "hashes", "denoising strength", "variation seed", "variation seed strength",
             "tiling", "eta", "ensd", "prediction type", "sampler sigma", "face restoration",
             "lora hashes", "ti hashes",  # LoRA tags stay in the prompt; embeddings by name
             "token merging ratio", "deepcache"}  # read as --tome and --deepcache
# Field name prefixes -> what they are, for the not-replayed note.
_FEATURES = (("hires", "hires fix"), ("refine", "refiner"), ("adetailer", "ADetailer"),
             ("lyco", "LyCORIS"),
             ("controlnet", "ControlNet"), ("clip skip", "clip skip"),
             ("face restoration", "face restoration"), ("mask", "inpainting mask"),
             ("pag", "perturbed-attention guidance"), ("cfg rescale", "CFG rescale"),
             ("s_", "sampler noise settings"), ("sgm noise", "SGM noise multiplier"),
             ("schedule ", "schedule options"), ("token merging", "token merging"),
             ("eta ", "sampler eta"), ("ip adapter", "IP-Adapter"), ("dynamic", "extension"))


def _fields(parameters: A1111Parameters) -> dict[str, str]:
    return {key.strip().lower(): value for key, value in parameters.fields.items()}


def _schedule(fields: Mapping[str, str]) -> str | None:
    """The schedule A1111 used, from ``Schedule type`` (``Automatic``: the sampler's default)."""
    given = fields.get("schedule type")
    if given is None:
        return fields.get("sampler sigma")  # SD.Next's name for it
    if given.strip().lower() != "automatic":
        return given
    label = fields.get("sampler", "").strip().lower()
    if label in _AUTOMATIC_KARRAS:
        return "karras"
    if label in _AUTOMATIC_EXPONENTIAL:
        return "exponential"
    return "automatic"


def _accelerators(collector: Collector, fields: Mapping[str, str]) -> None:
    """``Token merging ratio`` (A1111's and ours) -> --tome, when dreamline can run that ratio
    (else named in the not-replayed note); ``DeepCache`` (ours) -> --deepcache."""
    if "token merging ratio" in fields:
        collector.number("tome", fields["token merging ratio"])
        if not 0 <= collector.changes["tome"] <= TOME_MAX:
            collector.changes.pop("tome")
            collector.skip(f"token merging ratio {fields['token merging ratio'].strip()}")
    if "deepcache" in fields:
        collector.number("deepcache", fields["deepcache"], int)


def _unreplayed(collector: Collector, fields: Mapping[str, str]) -> None:
    for key, value in fields.items():
        if key in _HARMLESS:
            continue
        if key == "clip skip" and value.strip() in ("1", ""):
            continue
        for prefix, what in _FEATURES:
            if key.startswith(prefix):
                collector.skip(what if what != "clip skip" else f"clip skip {value.strip()}")
                break
        else:
            collector.skip(f"{key} ({value.strip()})")


def a1111_fetched(name: str, parameters: A1111Parameters, tool: str = "A1111") -> Fetched:
    """The Request closest to an A1111-style image's settings, with notes.

    Raises MetadataError (naming the file ``name``) for a value that is not a number, a sampler
    dreamline lacks, or settings outside dreamline's ranges.
    """
    fields = _fields(parameters)
    if "app" in fields or "pipeline" in fields:
        tool = fields.get("app", "SD.Next")
    collector = Collector(name, tool)
    prompt = translate(parameters.prompt, parameters.negative)
    collector.changes["prompt"] = prompt.prompt
    for what in prompt.unrun:
        collector.skip(what)
    if "steps" in fields:
        collector.number("steps", fields["steps"], int)
    if "cfg scale" in fields:
        collector.number("cfg_scale", fields["cfg scale"])
    if "seed" in fields:
        collector.seed(fields["seed"])
    else:
        collector.note("no Seed recorded; the command draws a new seed")
    if "size" in fields:
        width, _, height = fields["size"].lower().partition("x")
        collector.size(width, height)
    collector.sampler(fields.get("sampler"), _schedule(fields))
    if "variation seed" in fields and "variation seed strength" in fields:
        collector.number("variation_amount", fields["variation seed strength"])
        weight = collector.changes.pop("variation_amount")
        if weight > 0:
            collector.changes["with_variations"] = ((int(fields["variation seed"]), weight),)
    if fields.get("tiling", "").strip().lower() == "true":
        collector.changes["seamless"] = True
    _accelerators(collector, fields)
    hires = any(key.startswith("hires") for key in fields)
    if "denoising strength" in fields and not hires:
        collector.note("an img2img image: A1111 keeps no init image, so the command is "
                       f"txt2img (it used denoising strength {fields['denoising strength']})")
    _unreplayed(collector, fields)
    note = lost_note(prompt.lost, tool)
    if note:
        collector.notes.append(note)
    return collector.finish()
