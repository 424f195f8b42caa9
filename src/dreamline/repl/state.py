"""Per-session state: what ``-S -N`` / ``-I -N`` recall, and the line defaults' precedence.

A line's -C: its own (parse_line), else a launch -C, else the current model's registry
cfg_scale, else the built-in 7.5.  ``LineDefaults.refresh`` applies that after start-up and
after every ``!switch``, and says in one line when the model's value applies.  A line's -A
(and schedule type) the same way: its own, else a launch -A/--schedule/--karras, else the
model's registry ``sampler`` (with its schedule), else the built-in k_lms; a line that names
a sampler or schedule of its own never gets the model's schedule type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dreamline.format import format_number
from dreamline.parse import ParsedLine, Recall as LineRecall, parse_line
from dreamline.repl.context import ModelManager
from dreamline.repl.settings import ModelDefault, ModelSampler, Settings
from dreamline.request import Request, RequestError


@dataclass
class LastCommand:
    """Seeds and files of the previous command, oldest first: the Recall that parse_line uses."""

    seeds: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def seed(self, back: int) -> int:
        return self.seeds[self._index(back, len(self.seeds))]

    def image(self, back: int) -> str:
        return self.images[self._index(back, len(self.images))]

    @staticmethod
    def _index(back: int, count: int) -> int:
        """The list index of the ``back``-th from last; parse_line names the switch and value."""
        if count == 0:
            raise RequestError("there is no previous command with images to take it from")
        if not 1 <= back <= count:
            raise RequestError(f"the previous command made {count} image(s); expected -1 to "
                               f"-{count}")
        return count - back


@dataclass
class Recall:
    """What this session produced: the previous command (for -S/-I -N) and every seed used."""

    last: LastCommand = field(default_factory=LastCommand)
    seeds_used: list[int] = field(default_factory=list)

    def start_command(self) -> LastCommand:
        """A fresh record for the command about to run; ``finish`` makes it the last one."""
        return LastCommand()

    def saved(self, produced: LastCommand, path: str, seed: int) -> None:
        produced.seeds.append(seed)
        produced.images.append(path)
        self.seeds_used.append(seed)

    def finish(self, produced: LastCommand) -> None:
        """Even a failed command's finished images can be recalled; none: keep the older."""
        if produced.images:
            self.last = produced


class LineDefaults:
    """The defaults a bare prompt line gets: the launch defaults plus the model's -C and -A."""

    def __init__(self, settings: Settings, models: ModelManager,
                 say: Callable[[str], None]) -> None:
        self.settings = settings
        self.models = models
        self.say = say
        self.request: Request = settings.defaults
        self.model_default: ModelDefault | None = None  # the model's -C, when it applies
        self.model_sampler: ModelSampler | None = None  # the model's -A, when it applies

    @property
    def model_fields(self) -> frozenset[str]:
        """The Request fields whose default comes from the model now (for -h)."""
        fields = {"cfg_scale"} if self.model_default is not None else set()
        if self.model_sampler is not None:
            fields |= {"sampler", "schedule"}
        return frozenset(fields)

    def parse(self, line: str, recall: LineRecall | None = None) -> ParsedLine:
        """``line`` parsed against these defaults; a line naming its own -A, --schedule or
        --karras gets the launch schedule type, not the model's (-A ddim after a model's
        "DPM++ 2M Karras" is plain DDIM)."""
        if self.model_sampler is None:
            return parse_line(line, self.request, recall)
        own = self.request.with_changes(schedule=self.settings.defaults.schedule)
        try:
            parsed = parse_line(line, own, recall)
        except RequestError:
            return parse_line(line, self.request, recall)
        if parsed.given & {"sampler", "schedule", "karras"}:
            return parsed
        return parse_line(line, self.request, recall)

    def refresh(self) -> None:
        """Set the default -C and -A for the current model (at start and after !switch)."""
        self._refresh_sampler()
        before = self.model_default
        found = None
        if not self.settings.launch_cfg_scale:
            raw = self.models.default_cfg()
            found = ModelDefault(*raw) if raw is not None else None
        scale = self.settings.defaults.cfg_scale if found is None else found.cfg_scale
        self.request = self.request.with_changes(cfg_scale=scale)
        self.model_default = found
        if found == before:
            return  # said once, not again for the same model (the Ray driver's new manager)
        if found is not None:
            self.say(f">> guidance scale -C {format_number(found.cfg_scale)} by default for "
                     f"model {found.model!r} ({found.where})")
        else:
            self.say(f">> guidance scale -C {format_number(scale)} by default again (the model "
                     f"sets no cfg_scale of its own)")

    def _refresh_sampler(self) -> None:
        before = self.model_sampler
        found = None
        if not self.settings.launch_given & {"sampler", "schedule", "karras"}:
            raw = self.models.default_sampler()
            found = ModelSampler(*raw) if raw is not None else None
        launch = self.settings.defaults
        sampler = launch.sampler if found is None else found.sampler
        schedule = launch.schedule if found is None else found.schedule
        self.request = self.request.with_changes(sampler=sampler, schedule=schedule)
        self.model_sampler = found
        if found == before:
            return
        if found is not None:
            shown = "" if found.schedule == "model" else f" --schedule {found.schedule}"
            self.say(f">> sampler -A {found.sampler}{shown} by default for model "
                     f"{found.model!r} ({found.where})")
        else:
            self.say(f">> sampler -A {sampler} by default again (the model sets no sampler of "
                     f"its own)")
