"""The ONE table of prompt-line switches, and the conversions every consumer shares.

The parser, the formatter, the help text, the REPL completer and the launch options all read
this table, so a switch's names, type, range and help cannot drift apart.  Values are checked
for *form* here (is it a number?); ranges are checked once, by ``request.validate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any, Mapping

from dreamline import samplers as sampler_table
from dreamline.request import (CFG_SCALE_EXPECTED, MAX_SIDE, MAX_STEPS, SAMPLERS, SEED_MAX,
                               Request, RequestError, validate)


class Kind(Enum):
    """What a switch's value looks like on the line."""

    INT = "int"
    FLOAT = "float"
    PATH = "path"
    FLAG = "flag"
    CHOICE = "choice"
    VARIATIONS = "variations"  # seed:weight,seed:weight
    NEGATIVE = "negative"      # text added to the prompt as its [negative] words
    HELP = "help"              # an optional topic may follow (-h all, -h img2img)

    @property
    def takes_value(self) -> bool:
        """A value must follow (the help topic is optional, so help is not counted)."""
        return self not in (Kind.FLAG, Kind.HELP)


class Complete(Enum):
    """What the REPL completer offers after the switch."""

    NONE = "none"
    IMAGE = "image"      # an image file (directories too, to walk into)
    PATH = "path"        # any path, e.g. a directory
    SEED = "seed"        # a recent seed
    SAMPLER = "sampler"  # one of the switch's choices (SAMPLERS for -A)


class Group(Enum):
    """Help groups, in the order help shows them; ``topic`` is the word for ``-h <topic>``."""

    GENERATION = "Generation"
    IMG2IMG = "Image to image and inpainting"
    VARIATIONS = "Variations"
    PROMPT = "Prompt"
    OUTPUT = "Output"
    OTHER = "Other"

    @property
    def topic(self) -> str:
        return self.name.lower()


HELP_TOPICS: tuple[str, ...] = ("all", *(group.topic for group in Group))


_REQUEST_DEFAULTS = Request()


@dataclass(frozen=True)
class Switch:
    """One prompt-line switch: every name it answers to and how its value is read."""

    long: str                       # "--steps"
    shorts: tuple[str, ...]         # ("-s",): single-letter forms, which take joined values
    aliases: tuple[str, ...]        # extra spellings, e.g. "-m" for --sampler, "-fit" for --fit
    field: str | None               # the Request field it sets; None for --help
    kind: Kind
    metavar: str                    # what help shows for the value
    expected: str                   # the allowed values, for help and error messages
    help: str
    group: Group
    complete: Complete = Complete.NONE
    launch: bool = False            # also a launch option giving the default for every line
    recall: bool = False            # "-N" means "from the N-th-from-last image of the last command"
    common: bool = False            # shown on the short -h screen

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling, the long name first."""
        return (self.long, *self.shorts, *self.aliases)

    @property
    def label(self) -> str:
        """How error messages name the switch: '-s/--steps' (matches request.validate)."""
        return "/".join((*self.shorts, self.long))

    @property
    def default(self) -> Any:
        """The Request's own default for this switch's field."""
        if self.field is None:
            return None
        return getattr(_REQUEST_DEFAULTS, self.field)

    @property
    def brief(self) -> str:
        """The help text up to its first ';' (the short -h screen)."""
        return self.help.split(";")[0]

    def convert(self, raw: str) -> Any:
        """Read a value written on a line (or given as a launch option string).

        Raises RequestError naming the switch when the text is not of the right form.
        """
        if self.kind is Kind.HELP:
            if raw not in HELP_TOPICS:
                raise RequestError(f"{self.label}: {raw!r} is not a help topic; expected "
                                   f"{self.expected}")
            return raw
        if self.kind is Kind.INT:
            return parse_int(raw, self)
        if self.kind is Kind.FLOAT:
            return parse_float(raw, self)
        if self.kind is Kind.VARIATIONS:
            return parse_variations(raw, self)
        if self.kind is Kind.NEGATIVE:
            if "[" in raw or "]" in raw:
                raise RequestError(f"{self.label}: {raw!r} has a square bracket; expected "
                                   "negative words without [ ]")
            return raw
        if self.kind in (Kind.PATH, Kind.CHOICE):
            if raw == "":
                raise RequestError(f"{self.label}: an empty value; expected {self.expected}")
            if self.kind is Kind.CHOICE:
                return self._choice(raw)
            return raw
        raise RequestError(f"{self.label} takes no value, but got {raw!r}")

    def _choice(self, raw: str) -> str:
        """Our name for a choice: -A takes A1111's and ComfyUI's sampler names as well
        ('DPM++ 2M Karras', dpmpp_2m), --schedule 'uniform' for the model's own."""
        found: str | None
        if self.field == "sampler":
            named = sampler_table.resolve(raw)
            found = None if named is None else named[0]
        elif self.field == "schedule":
            found = sampler_table.schedule_word(raw)
        else:
            found = raw if raw in self.choices else None
        if found is None:
            raise RequestError(f"{self.label}: {raw!r} is not one of the choices; expected "
                               f"{self.expected}")
        return found

    def implied(self, raw: str) -> dict[str, Any]:
        """Other fields a value sets as well: -A "DPM++ 2M Karras" also sets the schedule.
        Call it with a value ``convert`` accepted."""
        if self.field == "sampler":
            named = sampler_table.resolve(raw)
            if named is not None and named[1] is not None:
                return {"schedule": named[1]}
        return {}

    @property
    def choices(self) -> tuple[str, ...]:
        if self.kind is not Kind.CHOICE:
            return ()
        return tuple(sampler_table.SCHEDULE_WORDS) if self.field == "schedule" else SAMPLERS


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_int(raw: str, switch: Switch) -> int:
    """A whole number written in decimal ('5', '-1'); '5.0', '1e3' and '5_0' are refused."""
    if not _INT.fullmatch(raw):
        raise RequestError(f"{switch.label}: {raw!r} is not a whole number; expected "
                           f"{switch.expected}")
    return int(raw)


def parse_float(raw: str, switch: Switch) -> float:
    """A finite decimal number ('0.5', '.5', '7', '1e-05'); 'nan' and 'inf' are refused."""
    if not _FLOAT.fullmatch(raw):
        raise RequestError(f"{switch.label}: {raw!r} is not a number; expected {switch.expected}")
    return float(raw)


def parse_variations(raw: str, switch: Switch) -> tuple[tuple[int, float], ...]:
    """'seed:weight,seed:weight' -> ((seed, weight), ...); spaces around items are allowed."""
    pairs: list[tuple[int, float]] = []
    for item in raw.split(","):
        seed_text, colon, weight_text = item.strip().partition(":")
        seed_text, weight_text = seed_text.strip(), weight_text.strip()
        if not colon or not _INT.fullmatch(seed_text) or not _FLOAT.fullmatch(weight_text):
            raise RequestError(f"{switch.label}: {raw!r} is not a list of seed:weight pairs; "
                               f"expected {switch.expected}")
        pairs.append((int(seed_text), float(weight_text)))
    return tuple(pairs)


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
           "a value in [0, 1]", "make variations of the seed's image, this far from it",
           Group.VARIATIONS),
    Switch("--with_variations", ("-V",), (), "with_variations", Kind.VARIATIONS,
           "SEED:W,...", "seed:weight pairs separated by commas, e.g. 1234:0.1,5678:0.2",
           "blend these variation seeds into the noise of -S, in order", Group.VARIATIONS),
    Switch("--negative_prompt", (), (), None, Kind.NEGATIVE, "TEXT",
           "text without [ ], e.g. \"blurry, ugly\"",
           "what to steer away from, the same as writing [TEXT] in the prompt", Group.PROMPT,
           common=True),
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
    for entry in (*SWITCHES, *UNSUPPORTED):
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
    allowed = {s.field: s for s in launch_switches()}
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
