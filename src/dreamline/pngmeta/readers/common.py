"""What every foreign reader shares: collecting settings and notes into a Request.

Values are checked here once: a seed above dreamline's largest is left out with a note, a sampler
or schedule without a dreamline equivalent is named, settings outside dreamline's ranges are a
MetadataError naming the file and the tool.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from dreamline import samplers as sampler_table
from dreamline.pngmeta.chunks import MetadataError
from dreamline.request import SEED_MAX, Request, RequestError, validate


class Fetched(NamedTuple):
    """A foreign image's closest Request, and one line per thing that could not be replayed."""

    request: Request
    notes: tuple[str, ...]


# Schedule names in any dialect (A1111 "Schedule type", ComfyUI/SwarmUI "scheduler", NovelAI
# "noise_schedule", InvokeAI "_k") -> ours; None: the tool's default, i.e. the model's own.
SCHEDULES: dict[str, str | None] = {
    "karras": "karras", "normal": "model", "uniform": "model", "native": "model",
    "exponential": "exponential", "model": "model", "automatic": None, "": None,
}
# Suffixes other tools glue to a sampler name ("euler_ancestral_karras", "DPM++ 2M Karras").
_SCHEDULE_SUFFIX = re.compile(r"[ _](karras|normal|simple|exponential|sgm[ _]uniform|"
                              r"ddim[ _]uniform|beta|uniform|polyexponential)$")
# Names of the same samplers in other dialects, normalised (lower case, '_' for spaces).
_ALIASES: dict[str, str] = {
    "euler_ancestral": "euler_ancestral", "euler_a": "euler_ancestral", "k_euler_a": "k_euler_a",
    "k_euler_ancestral": "euler_ancestral", "kdpm_2": "dpm_2", "kdpm_2_a": "dpm_2_ancestral",
    "dpm2_a": "dpm_2_ancestral", "dpm2": "dpm_2", "pndm": "plms",
}


def find_sampler(text: str) -> tuple[str, str | None] | None:
    """(our sampler, schedule named in the text or None) for a sampler in any tool's spelling:
    A1111 labels, ComfyUI names (``sample_`` prefix and ``_gpu`` suffix tolerated), NovelAI's
    ``k_`` names, with or without a schedule suffix.  None when dreamline has no equivalent."""
    found = sampler_table.resolve(text)
    if found is not None:
        return found
    wanted = "_".join(text.strip().lower().replace("-", " ").split())
    schedule: str | None = None
    match = _SCHEDULE_SUFFIX.search(wanted)
    if match:
        schedule = match.group(1).replace(" ", "_")
        wanted = wanted[:match.start()]
    wanted = wanted.removeprefix("sample_").removesuffix("_gpu")
    for candidate in (wanted, _ALIASES.get(wanted, ""), wanted.removeprefix("k_"),
                      _ALIASES.get(wanted.removeprefix("k_"), ""), wanted.replace("_", " ")):
        if candidate:
            found = sampler_table.resolve(candidate)
            if found is not None:
                return found[0], schedule if schedule is not None else found[1]
    return None


class Collector:
    """Settings and notes gathered by one reader for the file ``name`` written by ``tool``."""

    def __init__(self, name: str, tool: str) -> None:
        self.name = name
        self.tool = tool
        self.changes: dict[str, Any] = {}
        self.notes: list[str] = []
        self.unreplayed: list[str] = []

    def note(self, line: str) -> None:
        """One line the REPL prints after fetching."""
        self.notes.append(f"{self.tool}: {line}")

    def skip(self, what: str) -> None:
        """Something the image used that dreamline does not run (collected into one note)."""
        if what not in self.unreplayed:
            self.unreplayed.append(what)

    def number(self, field: str, value: Any, kind: type = float) -> None:
        """Set a numeric Request field from text or a number; MetadataError if not a number."""
        self.changes[field] = self.to_number(field, value, kind)

    def to_number(self, field: str, value: Any, kind: type = float) -> float:
        """``value`` (text or a number) as a float, or an int for ``kind`` int; MetadataError
        naming the file, field and value when it is not one (a list, a word, true/false)."""
        try:
            if isinstance(value, bool):
                raise TypeError("true/false is not a number")
            number = float(value)
        except (TypeError, ValueError):
            raise MetadataError(f"{self.name}: {self.tool} {field} {value!r} is not a number")\
                from None
        if kind is int and not number.is_integer():
            raise MetadataError(f"{self.name}: {self.tool} {field} {value!r} is not a whole "
                                "number")
        return int(number) if kind is int else number

    def text(self, field: str, value: Any) -> str:
        """``value`` as text (None: ""); MetadataError naming the file, field and value when it
        is a number, list or object instead."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise MetadataError(f"{self.name}: {self.tool} {field} {value!r} is not text")
        return value

    def seed(self, value: Any) -> None:
        """The seed; one above dreamline's largest (or -1, random) is left out with a note."""
        try:
            seed = int(str(value).strip())
        except ValueError:
            raise MetadataError(f"{self.name}: {self.tool} seed {value!r} is not a whole "
                                "number") from None
        if seed < 0:
            self.note(f"seed {seed} means a random seed; the command draws a new one")
        elif seed > SEED_MAX:
            self.note(f"seed {seed} is above 2^32-1, dreamline's largest seed; the command "
                      "draws a new seed, so it will not reproduce the image")
        else:
            self.changes["seed"] = seed

    def sampler(self, text: str | None, schedule: str | None = None) -> None:
        """Sampler and schedule in any spelling; a missing or unknown one is said in a note
        (the command then uses dreamline's default sampler)."""
        default = Request().sampler
        schedule = self.text("schedule", schedule) if schedule is not None else None
        if text is not None and not isinstance(text, str):
            raise MetadataError(f"{self.name}: {self.tool} sampler {text!r} is not text")
        if text is None or not str(text).strip():
            self.note(f"no sampler recorded; the command uses dreamline's default ({default})")
            return
        found = find_sampler(str(text))
        if found is None:
            raise MetadataError(f"{self.name}: {self.tool} sampler {str(text)!r} has no "
                                "dreamline equivalent; expected one of "
                                + ", ".join(sampler_table.NAMES) + " or their A1111/ComfyUI names")
        ours, named = found
        self.changes["sampler"] = ours
        wanted = schedule if schedule is not None and schedule.strip() else named
        self.schedule(ours, wanted)

    def schedule(self, sampler: str, text: str | None) -> None:
        """The schedule type (Karras, exponential or the model's own sigmas); "Automatic" is the
        sampler's A1111 default (the sampler table's ``a1111_automatic``); a schedule the
        sampler does not take, or one dreamline lacks, is named in a note."""
        key = (text or "").strip().lower().replace(" ", "_")
        if key == "automatic":
            key = sampler_table.spec(sampler).a1111_automatic
        ours = SCHEDULES.get(key.replace("_", " "), SCHEDULES.get(key, "?"))
        if ours == "?":
            self.note(f"schedule {text!r} has no dreamline equivalent; the command uses the "
                      "model's own sigmas")
            return
        if ours is None or ours == "model":
            return
        if ours not in sampler_table.spec(sampler).schedules:
            self.note(f"the {ours} schedule does not apply to {sampler}; left out")
        elif ours == "karras":
            self.changes["karras"] = True
        else:
            self.changes["schedule"] = ours

    def size(self, width: Any, height: Any) -> None:
        """Width and height (pixels)."""
        self.number("width", width, int)
        self.number("height", height, int)

    def finish(self) -> Fetched:
        """The Request and notes; MetadataError when the values are outside dreamline's ranges."""
        if self.unreplayed:
            self.note("not replayed (dreamline does not run them): "
                      + "; ".join(self.unreplayed))
        if not self.changes.get("prompt"):
            self.changes.pop("prompt", None)
            self.note("no prompt recorded")
        try:
            return Fetched(validate(Request(**self.changes)), tuple(self.notes))
        except RequestError as error:
            raise MetadataError(f"{self.name}: {self.tool} settings: {error}") from error
