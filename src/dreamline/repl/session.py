"""The session: one loop for typed, piped and --from_file lines, and the state lines share.

Every line goes through ``handle_line``, which never lets a per-line failure escape: a
DreamlineError is one red ``error:`` line, anything else one ``internal error:`` line with the
traceback appended to the error log, and the loop goes on.  What a line produced (seeds, image
paths) is kept for the next line's ``-S -N`` / ``-I -N`` and for seed completion.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from dreamline.errors import DreamlineError
from dreamline.format import format_number
from dreamline.parse import ParsedLine, parse_line
from dreamline.repl.commands import Flow, find_command, is_command_line, split_command
from dreamline.repl.completer import InvokeCompleter, SwitchSpec
from dreamline.repl.history import InvokeHistory
from dreamline.repl.keys import make_key_bindings
from dreamline.repl.settings import ModelDefault, Settings
from dreamline.repl.toolbar import make_toolbar
from dreamline.repl.validator import LineValidator, is_skipped
from dreamline.request import Request, RequestError

PROMPT = "invoke> "
MAX_REPLAY_DEPTH = 8


class RunnerLike(Protocol):
    """What the session needs from the runner (runner.Runner; a fake one in the tests)."""

    @property
    def model_label(self) -> str: ...

    @property
    def device_label(self) -> str: ...

    def run(self, request: Request, on_saved: Callable[[Path, int], None]) -> None: ...

    def model_names(self) -> list[str]: ...

    def describe_models(self) -> list[str]: ...

    def switch_model(self, name: str) -> None: ...

    def model_default(self) -> ModelDefault | None: ...


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


@dataclass(frozen=True)
class Outcome:
    """How one line ended: what the loop does next, and the one-line error if it failed."""

    flow: Flow
    error: str | None = None


def switch_specs() -> list[SwitchSpec]:
    """The completer's view of the switch table (switches.py)."""
    from dreamline import switches

    kinds = {
        switches.Complete.IMAGE: "image", switches.Complete.PATH: "file",
        switches.Complete.SEED: "seed", switches.Complete.SAMPLER: "sampler",
    }
    specs = []
    for switch in switches.SWITCHES:
        if switch.complete in kinds:
            kind = kinds[switch.complete]
        else:
            kind = "value" if switch.kind.takes_value else "none"
        specs.append(SwitchSpec(switch.names, kind, switch.help, switch.choices))
    return specs


class Session:
    """State shared by the lines of one run, and the loops that feed lines to it."""

    def __init__(self, settings: Settings, runner: RunnerLike, *, interactive: bool,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.settings = settings
        self.runner = runner
        self.interactive = interactive
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.defaults: Request = settings.defaults
        self.model_default: ModelDefault | None = None  # the model's -C, when it applies
        self.refresh_defaults()
        self.history = InvokeHistory(settings.history_path, persist=interactive)
        self.last = LastCommand()
        self.seeds_used: list[int] = []
        self.next_input = ""
        self._replay_depth = 0

    # ---- output -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """One red line (plain when stderr is not a terminal, e.g. piped or in the tests)."""
        is_tty = getattr(self.err, "isatty", lambda: False)()
        shown = f"\x1b[31m{text}\x1b[0m" if is_tty else text
        print(shown, file=self.err, flush=True)

    def internal_error(self, exc: BaseException, line: str) -> str:
        """Log the traceback; return the one line shown for it."""
        log_path = self.settings.error_log_path
        where = f"details in {log_path}"
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"--- {datetime.now().isoformat(timespec='seconds')}  line: {line}\n")
                log.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        except OSError as log_exc:
            where = f"and the error log {log_path} could not be written: {log_exc.strerror}"
        message = f"internal error: {type(exc).__name__}: {exc} ({where})"
        self.error(message)
        return message

    # ---- what commands and the toolbar use ----------------------------------------------
    def set_next_input(self, text: str) -> None:
        """Put ``text`` on the next input line; without a prompt, just show it."""
        if self.interactive:
            self.next_input = text
        else:
            self.say(text)

    def find_image(self, path_text: str) -> Path:
        """A path as typed, or retried inside the output dir (where the images are)."""
        path = Path(path_text).expanduser()
        if path.is_file():
            return path
        in_outdir = self.settings.outdir / path
        if not path.is_absolute() and in_outdir.is_file():
            return in_outdir
        if path.is_dir():
            raise DreamlineError(f"{path_text}: is a directory; expected an image file")
        raise DreamlineError(f"{path_text}: no such file (looked here and in "
                             f"{self.settings.outdir})")

    def refresh_defaults(self) -> None:
        """Set the default -C for the current model (at start and after !switch).

        A line's own -C beats everything (parse_line); then a launch -C; then the model's
        registry cfg_scale; then the launch defaults' built-in 7.5.  One line says so whenever
        the model's value applies, and when switching away from it restores 7.5.
        """
        before = self.model_default
        found = None if self.settings.launch_cfg_scale else self.runner.model_default()
        scale = self.settings.defaults.cfg_scale if found is None else found.cfg_scale
        self.defaults = self.defaults.with_changes(cfg_scale=scale)
        self.model_default = found
        if found is not None:
            self.say(f">> guidance scale -C {format_number(found.cfg_scale)} by default for "
                     f"model {found.model!r} ({found.where})")
        elif before is not None:
            self.say(f">> guidance scale -C {format_number(scale)} by default again (the model "
                     f"sets no cfg_scale of its own)")

    def toolbar_state(self) -> tuple[str, str, Request]:
        return self.runner.model_label, self.runner.device_label, self.defaults

    def parse_line(self, line: str) -> ParsedLine:
        """A prompt line parsed against the current defaults and the previous command."""
        return parse_line(line, self.defaults, self.last)

    # ---- one line -----------------------------------------------------------------------
    def handle_line(self, line: str) -> Outcome:
        """Run one line; report any failure as one line and never raise it (but Ctrl-C when
        there is no prompt to go back to)."""
        return self.guarded(lambda: self._dispatch(line), line)

    def guarded(self, action: Callable[[], Flow], line: str) -> Outcome:
        """Run ``action`` with the per-line error handling (also used to load at start)."""
        try:
            return Outcome(action())
        except DreamlineError as exc:
            message = f"error: {exc}"
            self.error(message)
            return Outcome(Flow.GO_ON, message)
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.error("interrupted")
            return Outcome(Flow.GO_ON, "interrupted")
        except Exception as exc:  # a bug or out-of-memory: one line, traceback in the log
            return Outcome(Flow.GO_ON, self.internal_error(exc, line))

    def _dispatch(self, line: str) -> Flow:
        if is_skipped(line):
            return Flow.GO_ON
        if is_command_line(line):
            bang, word, arg = split_command(line)
            command = find_command(word, bang=bang)
            if command is None:
                raise DreamlineError(f"!{word}: no such command; try !help")
            return command.handler(self, word, arg)
        parsed = self.parse_line(line)
        if parsed.wants_help:
            from dreamline.helptext import format_help

            self.say(format_help())
            return Flow.GO_ON
        request = self._prepare(parsed.request)
        produced = LastCommand()

        def on_saved(path: Path, seed: int) -> None:
            produced.seeds.append(seed)
            produced.images.append(str(path))
            self.seeds_used.append(seed)

        try:
            self.runner.run(request, on_saved)
        finally:
            if produced.images:  # even a failed command's finished images can be recalled
                self.last = produced
        return Flow.GO_ON

    def _prepare(self, request: Request) -> Request:
        """Resolve init/mask paths against the output dir; take an empty prompt from -I's PNG."""
        changes: dict[str, object] = {}
        if request.init_img is not None:
            changes["init_img"] = str(self.find_image(request.init_img))
        if request.init_mask is not None:
            changes["init_mask"] = str(self.find_image(request.init_mask))
        if not request.prompt.strip() and request.init_img is not None:
            from dreamline.metadata import read_prompt

            stored = read_prompt(str(changes["init_img"]))
            if stored:
                self.say(f">> using the prompt stored in {changes['init_img']}: {stored}")
                changes["prompt"] = stored
        return request.with_changes(**changes) if changes else request

    # ---- the loops ----------------------------------------------------------------------
    def make_prompt_session(self, *, input: Input | None = None,
                            output: Output | None = None) -> PromptSession[str]:
        """The prompt_toolkit session: history, suggestions, completion, validation, toolbar."""
        from dreamline.request import SAMPLERS

        completer = InvokeCompleter(switch_specs(), seeds=lambda: self.seeds_used,
                                    models=self.runner.model_names, samplers=SAMPLERS)
        return PromptSession(
            history=self.history,
            auto_suggest=AutoSuggestFromHistory(),
            completer=completer,
            complete_while_typing=False,
            validator=LineValidator(self.parse_line),
            validate_while_typing=False,
            bottom_toolbar=make_toolbar(self),
            key_bindings=make_key_bindings(),
            input=input,
            output=output,
        )

    def run_interactive(self, prompt_session: PromptSession[str]) -> int:
        """Prompt until Ctrl-D or q.  Ctrl-C at the prompt only clears the line."""
        while True:
            default, self.next_input = self.next_input, ""
            try:
                line = prompt_session.prompt(PROMPT, default=default)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if self.handle_line(line).flow is Flow.QUIT:
                break
        self.say("goodbye!")
        return 0

    def run_lines(self, lines: Iterable[str], *, source: str = "input") -> int:
        """Run piped or --from_file lines, echoing each as '#line'; the exit status."""
        try:
            failures = self._run_lines(lines)
        except KeyboardInterrupt:
            self.error("interrupted")
            return 130
        if failures:
            self.error(f"{len(failures)} line(s) of {source} failed:")
            for number, message in failures:
                self.error(f"  line {number}: {message}")
        self.say("goodbye!")
        return 1 if failures else 0

    def _run_lines(self, lines: Iterable[str]) -> list[tuple[int, str]]:
        failures: list[tuple[int, str]] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\r\n")
            if is_skipped(line):
                continue
            self.say(f"#{line}")
            if not self.interactive:  # typed lines are recorded by the prompt itself
                self.history.append_string(line)
            outcome = self.handle_line(line)
            if outcome.error is not None:
                failures.append((number, outcome.error))
            if outcome.flow is Flow.QUIT:
                break
        return failures

    def replay_file(self, path: Path) -> Flow:
        """!replay: run a file's lines here; fails (one line) if any of them failed."""
        if self._replay_depth >= MAX_REPLAY_DEPTH:
            raise DreamlineError(f"!replay {path}: replays nest more than {MAX_REPLAY_DEPTH} "
                                 f"deep; is a file replaying itself?")
        try:
            text = path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise DreamlineError(f"!replay {path}: cannot read it: {exc.strerror}") from exc
        self._replay_depth += 1
        try:
            failures = self._run_lines(text.splitlines())
        finally:
            self._replay_depth -= 1
        if failures:
            numbers = ", ".join(str(number) for number, _ in failures)
            raise DreamlineError(f"!replay {path}: line(s) {numbers} failed")
        return Flow.GO_ON

