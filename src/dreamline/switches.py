"""The ONE table of prompt-line switches, and the conversions every consumer shares.

The parser, the formatter, the help text, the REPL completer and the launch options all read
this table, so a switch's names, type, range and help cannot drift apart.  Values are checked
for *form* here (is it a number?); ranges are checked once, by ``request.validate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from dreamline import samplers as sampler_table
from dreamline.request import (CFG_SCALE_EXPECTED, DEEPCACHE_EXPECTED, MAX_SIDE, MAX_STEPS,
                               SAMPLERS, SEED_MAX, TOME_EXPECTED, VARIATION_EXPECTED, Request,
                               RequestError, validate)
from dreamline.switch_types import HELP_TOPICS, Complete, Group, Kind, Switch

__all__ = ["HELP_TOPICS", "SWITCHES", "UNSUPPORTED", "BY_NAME", "BY_FIELD", "LONG_NAMES",
           "Complete", "Group", "Kind", "Switch", "Unsupported", "launch_switches",
           "launch_defaults"]


_SAMPLER_LIST = ", ".join(SAMPLERS)

SWITCHES: tuple[Switch, ...] = (
    Switch("--steps", ("-s",), (), "steps", Kind.INT, "N",
           f"a whole number from 1 to {MAX_STEPS}",
           "sampling steps of the full schedule", Group.GENERATION, launch=True, common=True),
    Switch("--seed", ("-S",), (), "seed", Kind.INT, "SEED",
           f"a seed from 0 to {SEED_MAX}, or -N for a seed of the last command",
           "seed (random when not given); -S -N reuses the seed of the N-th-from-last image of "
           "the previous command", Group.GENERATION, Complete.SEED, recall=True, common=True),
    Switch("--iterations", ("-n",), (), "iterations", Kind.INT, "N",
           "a whole number from 1 to 1000",
           "images per command, each with its own seed derived from -S", Group.GENERATION,
           common=True),
    Switch("--width", ("-W",), (), "width", Kind.INT, "W",
           f"a size in pixels from 8 to {MAX_SIDE}",
           "image width (model default when not given); floored to the model's multiple",
           Group.GENERATION, launch=True, common=True),
    Switch("--height", ("-H",), (), "height", Kind.INT, "H",
           f"a size in pixels from 8 to {MAX_SIDE}",
           "image height (model default when not given); floored to the model's multiple",
           Group.GENERATION, launch=True, common=True),
    Switch("--cfg_scale", ("-C",), (), "cfg_scale", Kind.FLOAT, "SCALE",
           CFG_SCALE_EXPECTED, "classifier-free guidance scale", Group.GENERATION,
           launch=True, common=True),
    Switch("--sampler", ("-A",), ("-m",), "sampler", Kind.CHOICE, "NAME",
           f"one of {_SAMPLER_LIST}, or an A1111 or ComfyUI name (\"DPM++ 2M Karras\", "
           "dpmpp_2m)", "sampler", Group.GENERATION, Complete.SAMPLER,
           launch=True, common=True),
    Switch("--karras", (), (), "karras", Kind.FLAG, "", "a flag",
           "use the Karras sigma schedule instead of the model's own (short for --schedule "
           "karras)", Group.GENERATION),
    Switch("--schedule", (), (), "schedule", Kind.CHOICE, "TYPE",
           f"one of {', '.join(sampler_table.SCHEDULE_WORDS)}",
           "sigma schedule type: model (the model's own spacing, A1111's Uniform), karras or "
           f"exponential; karras and exponential for {', '.join(sampler_table.SCHEDULED_NAMES)}",
           Group.GENERATION, Complete.SAMPLER),
    Switch("--seamless", (), (), "seamless", Kind.FLAG, "", "a flag",
           "make a tileable image (circular padding in every convolution)", Group.GENERATION),
    Switch("--deepcache", (), (), "deepcache", Kind.INT, "N", DEEPCACHE_EXPECTED,
           "faster, slightly different pixels: run the full UNet every N-th call and reuse its "
           "cached deep features between (DeepCache); 1 is off", Group.GENERATION),
    Switch("--tome", (), (), "tome", Kind.FLOAT, "R", TOME_EXPECTED,
           "token merging (ToMe for SD): merge this share of image tokens in the full-size "
           "attention; pays at large sizes, changes pixels; 0 is off", Group.GENERATION),
    Switch("--init_img", ("-I",), (), "init_img", Kind.PATH, "PATH",
           "an image path, or -N for an image of the last command",
           "init image for img2img; -I -N uses the N-th-from-last image of the previous command",
           Group.IMG2IMG, Complete.IMAGE, recall=True, common=True),
    Switch("--strength", ("-f",), (), "strength", Kind.FLOAT, "F",
           "a value in (0, 1]",
           "how much the init image is changed; 1.0 starts from pure noise", Group.IMG2IMG,
           launch=True, common=True),
    Switch("--fit", ("-T",), ("-fit",), "fit", Kind.FLAG, "", "a flag",
           "resize the init image (and mask) to fit inside -W x -H, keeping its aspect",
           Group.IMG2IMG),
    Switch("--init_mask", ("-M",), (), "init_mask", Kind.PATH, "PATH", "an image path",
           "mask image: its alpha (or black in an L/RGB mask) marks what is repainted",
           Group.IMG2IMG, Complete.IMAGE),
    Switch("--invert_mask", (), (), "invert_mask", Kind.FLAG, "", "a flag",
           "swap kept and repainted regions of the mask", Group.IMG2IMG),
    Switch("--variation_amount", ("-v",), (), "variation_amount", Kind.FLOAT, "A",
           VARIATION_EXPECTED, "make variations of the seed's image, this far from it",
           Group.VARIATIONS),
    Switch("--with_variations", ("-V",), (), "with_variations", Kind.VARIATIONS,
           "SEED:W,...", "seed:weight pairs separated by commas, e.g. 1234:0.1,5678:0.2",
           "blend these variation seeds into the noise of -S, in order", Group.VARIATIONS),
    Switch("--negative_prompt", (), (), None, Kind.NEGATIVE, "TEXT",
           "text without [ ], e.g. \"blurry, ugly\"",
           "what to steer away from, the same as writing [TEXT] in the prompt", Group.PROMPT,
           common=True),
    Switch("--lora", (), (), "loras", Kind.LORAS, "NAME:W,...",
           "name:weight pairs separated by commas, e.g. detail:0.8,style:-0.5",
           "apply these LoRAs (loras/ folder beside models.yaml, or paths) to this line only, "
           "as <lora:name:weight> in the prompt does; the weight may be negative",
           Group.PROMPT),
    Switch("--skip_normalize", ("-x",), (), "skip_normalize", Kind.FLAG, "", "a flag",
           "do not normalise text:weight sub-prompt weights to sum 1", Group.PROMPT),
    Switch("--log_tokenization", ("-t",), (), "log_tokenization", Kind.FLAG, "", "a flag",
           "print the CLIP tokens of the prompt, and those cut off past 77", Group.PROMPT),
    Switch("--grid", ("-g",), (), "grid", Kind.FLAG, "", "a flag",
           "also write one grid image of all images of the command", Group.OUTPUT,
           launch=True, common=True),
    Switch("--outdir", ("-o",), (), "outdir", Kind.PATH, "DIR", "a directory path",
           "output directory for this command (default: the launch --outdir)", Group.OUTPUT,
           Complete.PATH),
    Switch("--save_intermediates", (), (), "save_intermediates", Kind.INT, "N",
           f"a step interval from 1 to {MAX_STEPS}",
           "also save each image's start, every N-th step and the last, and a strip of them",
           Group.OUTPUT),
    Switch("--decode_intermediates", (), (), "decode_intermediates", Kind.FLAG, "", "a flag",
           "full VAE decodes of the --save_intermediates steps instead of quick previews",
           Group.OUTPUT),
    Switch("--dry_run", (), (), "dry_run", Kind.FLAG, "", "a flag",
           "only print the estimate (steps, where the init image comes in, time, memory) and "
           "the command; generate and write nothing", Group.OTHER),
    Switch("--help", ("-h",), (), None, Kind.HELP, "[TOPIC]",
           f"nothing, or one of {', '.join(HELP_TOPICS)}",
           "show the common switches; -h all shows every switch, -h <group> one group",
           Group.OTHER, common=True),
)


@dataclass(frozen=True)
class Unsupported:
    """A reference (InvokeAI) switch dreamline knows but does not implement."""

    names: tuple[str, ...]
    feature: str

    @property
    def message(self) -> str:
        return f"{self.names[0]} ({self.feature}) is not supported by dreamline; line skipped"


UNSUPPORTED: tuple[Unsupported, ...] = (
    Unsupported(("--gfpgan_strength", "-G"), "face restoration"),
    Unsupported(("--facetool", "-ft"), "face restoration"),
    Unsupported(("--codeformer_fidelity", "-cf"), "face restoration"),
    Unsupported(("--upscale", "-U"), "upscaling"),
    Unsupported(("--save_original", "-save_orig"), "keeping originals of restored images"),
    Unsupported(("--embiggen", "-embiggen"), "embiggen upscaling"),
    Unsupported(("--embiggen_tiles", "-embiggen_tiles"), "embiggen upscaling"),
    Unsupported(("--hires_fix",), "high-resolution fix"),
    Unsupported(("--outcrop", "-c"), "outcropping"),
    Unsupported(("--out_direction", "-D"), "outpainting"),
    Unsupported(("--text_mask", "-tm"), "text masks"),
    Unsupported(("--inpaint_replace", "-r"), "inpaint replace"),
    Unsupported(("--threshold",), "thresholded sampling"),
    Unsupported(("--perlin",), "Perlin noise"),
    Unsupported(("--png_compression", "-z"), "PNG compression level"),
)


def _index() -> dict[str, Switch | Unsupported]:
    table: dict[str, Switch | Unsupported] = {}
    entries: tuple[Switch | Unsupported, ...] = (*SWITCHES, *UNSUPPORTED)
    for entry in entries:
        for name in entry.names:
            if name in table:
                raise RuntimeError(f"switch table: {name} is listed twice")
            table[name] = entry
    return table


BY_NAME: Mapping[str, Switch | Unsupported] = _index()
BY_FIELD: Mapping[str, Switch] = {s.field: s for s in SWITCHES if s.field is not None}
LONG_NAMES: tuple[str, ...] = tuple(name for name in BY_NAME if name.startswith("--"))


def launch_switches() -> tuple[Switch, ...]:
    """The switches that are also launch options (their value is every line's default)."""
    return tuple(s for s in SWITCHES if s.launch)


def launch_defaults(values: Mapping[str, Any], base: Request | None = None) -> Request:
    """Turn launch-option values into the defaults Request every prompt line is overlaid on.

    ``values`` maps Request field names (steps, width, height, cfg_scale, strength, sampler,
    grid) to a string as typed, an already-typed value, or None for "not given".  Each is read
    with the same conversion as on a prompt line, and the result is validated, so a bad launch
    option is reported exactly like a bad switch.
    """
    allowed = {s.field: s for s in launch_switches() if s.field is not None}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        switch = allowed.get(name)
        if switch is None:
            raise ValueError(f"launch_defaults: {name!r} is not a launch default; expected one of "
                             f"{', '.join(sorted(allowed))}")
        if value is None:
            continue
        if switch.kind is Kind.FLAG:
            if not isinstance(value, bool):
                raise RequestError(f"{switch.label}: {value!r} is not on/off; expected a flag")
        elif isinstance(value, str):
            changes.update(switch.implied(value) if switch.kind is Kind.CHOICE else {})
            value = switch.convert(value)
        changes[name] = value
    return validate(replace(base if base is not None else Request(), **changes))


def _check_table() -> None:
    """Every Request field except the prompt has exactly one switch, and every switch's field
    is a Request field (checked at import, so a drifted table cannot be used at all)."""
    settable = {f.name for f in fields(Request)} - {"prompt"}
    named = [s.field for s in SWITCHES if s.field is not None]
    if set(named) != settable or len(named) != len(settable):
        raise RuntimeError(f"switch table: fields {sorted(named)} do not match Request's "
                           f"settable fields {sorted(settable)} one to one")


_check_table()
