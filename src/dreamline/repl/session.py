"""The session: one loop for typed, piped and --from_file lines, and its error policy.

Every line goes through ``handle_line``, which never lets a per-line failure escape: a
DreamlineError is one red ``error:`` line, anything else one ``internal error:`` line with the
traceback appended to the error log, and the loop goes on.  A model that cannot be loaded stops
a non-interactive run at once (every later line would fail the same way); at the prompt,
``!switch`` still works.  What a line produced is kept for ``-S -N`` / ``-I -N`` (repl/state.py).
The loops that feed it lines (the prompt, piped and --from_file lines, !replay) are
repl/loops.py's.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dreamline.errors import DreamlineError
from dreamline.parse import ParsedLine
from dreamline.repl import loops
from dreamline.repl.commands import find_command, is_command_line, split_command
from dreamline.repl.context import (NO_HOOKS, CommandInterrupted, FinishedLine, Flow, LineHooks,
                                    ModelManager, ModelUnavailable, Outcome, RequestRunner,
                                    SourceInterrupted)
from dreamline.repl.history import InvokeHistory
from dreamline.repl.inputs import find_image, prepare_request
from dreamline.repl.lines import SourceLine, decode_lines, shown, text_lines, without_prompt
from dreamline.repl.loops import STATUS_MODEL_UNAVAILABLE
from dreamline.repl.replay import ReplayStack, ReplayStopped
from dreamline.repl.settings import Settings
from dreamline.repl.state import LastCommand, LineDefaults, Recall
from dreamline.repl.validator import is_skipped
from dreamline.request import Request

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

__all__ = ["STATUS_MODEL_UNAVAILABLE", "LastCommand", "Outcome", "Session"]


class Session:
    """State shared by the lines of one run, and the loops that feed lines to it."""

    def __init__(self, settings: Settings, models: ModelManager, runner: RequestRunner, *,
                 interactive: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.settings = settings
        self.models = models
        self.runner = runner
        self.interactive = interactive
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.line_defaults = LineDefaults(settings, models, self.say)
        self.line_defaults.refresh()
        self.history = InvokeHistory(settings.history_path, persist=interactive)
        for problem in self.history.problems:
            self.error(f"warning: {problem}")
        self.recall = Recall()
        self.next_input = ""
        self.current_line = ""
        self.replaying = ReplayStack()  # the files !replay is running now
        self.hooks: LineHooks = NO_HOOKS  # a batch run's (--resume, the manifest)
        # the session's textual-inversion embeddings (an EmbeddingSet), made on first use
        self.embedding_source: Callable[[], Any] | None = None
        self.finished_line: FinishedLine | None = None  # the last line, if it fully finished

    # ---- state the tests and the toolbar read -------------------------------------------
    @property
    def defaults(self) -> Request:
        """The defaults a bare prompt line gets now."""
        return self.line_defaults.request

    @defaults.setter
    def defaults(self, request: Request) -> None:
        self.line_defaults.request = request

    @property
    def last(self) -> LastCommand:
        return self.recall.last

    @last.setter
    def last(self, command: LastCommand) -> None:
        self.recall.last = command

    @property
    def seeds_used(self) -> list[int]:
        return self.recall.seeds_used

    def model_names(self) -> list[str]:
        return self.models.names()

    def embeddings(self) -> Any:
        """The EmbeddingSet prompts may use, or None when the session has none to offer."""
        return self.embedding_source() if self.embedding_source is not None else None

    def local_loras(self) -> Any:
        """The LoRA files !fetch checks a command's LoRAs against (hashes cached per user)."""
        from dreamline.repl.fetch_loras import user_loras

        return user_loras(self.settings.lora_folder)

    def embedding_names(self) -> list[str]:
        """Names for completion; [] when they cannot be read (!embeddings says why)."""
        try:
            found = self.embeddings()
        except DreamlineError:
            return []
        return list(found.names) if found is not None else []

    def toolbar_state(self) -> tuple[str, str, Request]:
        return self.models.label, self.models.device_label, self.defaults

    # ---- output -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """One red line (plain when stderr is not a terminal, e.g. piped or in the tests)."""
        is_tty = getattr(self.err, "isatty", lambda: False)()
        text = shown(text)
        print(f"\x1b[31m{text}\x1b[0m" if is_tty else text, file=self.err, flush=True)

    def internal_error(self, exc: BaseException, line: str) -> str:
        """Log the traceback; return the one line shown for it."""
        log_path = self.settings.error_log_path
        where = f"details in {log_path}"
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"--- {datetime.now().isoformat(timespec='seconds')}  line: "
                          f"{shown(line)}\n")
                log.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        except OSError as log_exc:
            where = f"and the error log {log_path} could not be written: {log_exc.strerror}"
        message = f"internal error: {type(exc).__name__}: {exc} ({where})"
        self.error(message)
        return message

    # ---- what commands use (CommandContext) ---------------------------------------------
    def set_next_input(self, text: str) -> None:
        """Put ``text`` on the next input line; without a prompt, show it and say it was not
        run (a file or pipe has no input line to edit it on)."""
        if self.interactive:
            self.next_input = text
        else:
            self.say(shown(text))
            self.say(">> not run: a file or pipe has no input line to edit it on; put the "
                     "command on a line of its own to run it")

    def find_image(self, path_text: str) -> Path:
        """A path as typed, or retried inside the output dir (where the images are)."""
        return find_image(path_text, self.settings.outdir)

    def refresh_defaults(self) -> None:
        self.line_defaults.refresh()

    def use_models(self, models: ModelManager) -> None:
        """Go on with another manager (the default model after a bad --model at start)."""
        self.models = models
        self.line_defaults.models = models
        self.refresh_defaults()

    def parse_line(self, line: str) -> ParsedLine:
        """A prompt line parsed against the current defaults and the previous command."""
        return self.line_defaults.parse(without_prompt(line), self.recall.last)

    def check_line(self, line: str) -> None:
        """What the validator runs: parse, and make sure -I / -M name existing files."""
        parsed = self.parse_line(line)
        for path, what in ((parsed.request.init_img, "init image"),
                           (parsed.request.init_mask, "mask")):
            if path is not None:
                find_image(path, self.settings.outdir, what)

    # ---- one line -----------------------------------------------------------------------
    def handle_line(self, line: str) -> Outcome:
        """Run one line; report any failure as one line and never raise it (but Ctrl-C when
        there is no prompt to go back to)."""
        line = without_prompt(line)
        self.current_line, self.finished_line = line, None
        return self.guarded(lambda: self._dispatch(line), line)

    def guarded(self, action: Callable[[], Flow], line: str) -> Outcome:
        """Run ``action`` with the per-line error handling (also used to load at start)."""
        try:
            return Outcome(action())
        except ModelUnavailable as exc:
            hint = "; !switch to another model (see !models)" if self.interactive else ""
            message = f"error: the model cannot be loaded: {exc}{hint}"
            self.error(message)
            return Outcome(Flow.GO_ON, message, fatal=not self.interactive)
        except DreamlineError as exc:
            if isinstance(exc, ReplayStopped) and self.replaying:
                raise  # not once per nested replay: the outermost line says it
            message = f"error: {exc}"
            self.error(message)
            return Outcome(Flow.GO_ON, message)
        except KeyboardInterrupt as exc:
            if not self.interactive or self.replaying:
                raise  # a file, a pipe or a !replay stops as a whole (repl/loops.py)
            if isinstance(exc, SourceInterrupted):  # the outermost !replay line
                message = f"error: !replay stopped: {exc}"
                self.error(message)
                return Outcome(Flow.GO_ON, message)
            if not isinstance(exc, CommandInterrupted):  # a command says it itself
                self.error("interrupted")
            return Outcome(Flow.GO_ON, "interrupted")
        except Exception as exc:  # a bug: one line, the traceback in the log
            return Outcome(Flow.GO_ON, self.internal_error(exc, line))

    def stop_requested(self) -> bool:
        """True when Ctrl-C came during the last command but it finished all the same (Ray's
        images, or the last file being written): a file, pipe or !replay stops after it.
        Asking clears it, so an old stop never ends a later replay."""
        stopped = bool(getattr(self.runner, "stopped_after", False))
        if stopped:
            self.runner.stopped_after = False  # type: ignore[attr-defined]
        return stopped

    def _dispatch(self, line: str) -> Flow:
        if is_skipped(line):
            return Flow.GO_ON
        if is_command_line(line):
            bang, word, arg = split_command(line)
            command = find_command(word, bang=bang)
            if command is None:
                raise DreamlineError(f"!{word}: no such command; try !help")
            if command.arg_kind == "none" and command.bang and arg.strip():
                raise DreamlineError(f"!{word}: takes nothing after it; got {arg.strip()!r}")
            return command.handler(self, word, arg)
        parsed = self.parse_line(line)
        if parsed.wants_help:
            from dreamline.helptext import format_help

            self.say(format_help(parsed.help_topic, self.defaults,
                                 self.line_defaults.model_fields,
                                 self.models.loaded_multiple()))
            return Flow.GO_ON
        for note in parsed.notes:
            self.say(f">> {note}")
        request = prepare_request(parsed.request, self.settings.outdir, self.say,
                                  self.models.native_size())
        produced = self.recall.start_command()
        try:
            self.runner.run(request, lambda path, seed: self.recall.saved(produced, str(path),
                                                                           seed))
        finally:
            self.recall.finish(produced)
        self.finished_line = FinishedLine.of(request, produced)
        return Flow.GO_ON

    # ---- the loops (repl/loops.py) -----------------------------------------------------
    def run_interactive(self, prompt_session: PromptSession[str]) -> int:
        """Prompt until Ctrl-D, q, exit or quit.  Ctrl-C at the prompt only clears the line."""
        return loops.run_interactive(self, prompt_session)

    def run_lines(self, lines: Iterable[str], *, source: str = "input") -> int:
        """Run already-decoded lines (see ``run_source``); the exit status."""
        return self.run_source(text_lines(lines), source=source)

    def run_bytes(self, chunks: Iterable[bytes], *, source: str = "input") -> int:
        """Run the byte lines of a file or pipe; a line that is not UTF-8 fails alone."""
        return self.run_source(decode_lines(chunks), source=source)

    def run_source(self, lines: Iterable[SourceLine], *, source: str = "input") -> int:
        """Run piped or --from_file lines, echoing each as '#line'; the exit status: 0, 1 if
        any line failed, 2 if the run stopped because the model cannot be loaded, 130 on
        Ctrl-C."""
        return loops.run_source(self, lines, source=source)

    def replay_file(self, path: Path) -> Flow:
        """!replay: run a file's lines here; fails (one line) if any of them failed."""
        return loops.replay_file(self, path)
