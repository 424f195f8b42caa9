"""What a prompt-line switch is: its value kinds, completion kinds, help groups and the
``Switch`` record itself (names, kind, help, and how a value written on a line is read).

The table of every switch is ``switches.py``; this module holds only the types it is made of.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from dreamline import samplers as sampler_table
from dreamline.lora_tags import LoraTagError, parse_lora_list
from dreamline.request import SAMPLERS, Request, RequestError
from dreamline.switch_values import parse_float, parse_int, parse_variations

class Kind(Enum):
    """What a switch's value looks like on the line."""

    INT = "int"
    FLOAT = "float"
    PATH = "path"
    FLAG = "flag"
    CHOICE = "choice"
    VARIATIONS = "variations"  # seed:weight,seed:weight
    LORAS = "loras"            # name:weight,name:weight (repeatable: each adds to the list)
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
        if self.kind is Kind.HELP:  # a keyword: -h ALL is -h all
            if raw.strip().lower() not in HELP_TOPICS:
                raise RequestError(f"{self.label}: {raw!r} is not a help topic; expected "
                                   f"{self.expected}")
            return raw.strip().lower()
        if self.kind is Kind.INT:
            return parse_int(raw, self.label, self.expected)
        if self.kind is Kind.FLOAT:
            return parse_float(raw, self.label, self.expected)
        if self.kind is Kind.VARIATIONS:
            return parse_variations(raw, self.label, self.expected)
        if self.kind is Kind.LORAS:
            try:
                return parse_lora_list(raw, self.label)
            except LoraTagError as error:
                raise RequestError(str(error)) from None
        if self.kind is Kind.NEGATIVE:
            if "[" in raw or "]" in raw:
                raise RequestError(f"{self.label}: {raw!r} has a square bracket; expected "
                                   "negative words without [ ]")
            return raw
        if self.kind in (Kind.PATH, Kind.CHOICE):
            if raw == "":
                raise RequestError(f"{self.label}: an empty value; expected {self.expected}")
            if not raw.strip():  # a blank path would be the current directory
                raise RequestError(f"{self.label}: {raw!r} is blank; expected {self.expected}")
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
