"""The loops that feed lines to the session: the prompt, piped and --from_file lines (each
echoed as '#line', the failures summed up at the end, the exit status), the batch hooks around
each line, and ``!replay``'s file.

Each line still runs through the session's ``handle_line`` and its error policy; this module
only decides what comes next and what the run's status is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dreamline.errors import DreamlineError, ModelError
from dreamline.repl.context import (NO_HOOKS, FinishedLine, Flow, LineHooks, ModelUnavailable,
                                    Outcome, SourceInterrupted)
from dreamline.repl.history import InvokeHistory
from dreamline.repl.lines import PROMPT, SourceLine, decode_lines, shown, without_prompt
from dreamline.repl.replay import ReplayStack
from dreamline.repl.validator import is_skipped

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

STATUS_MODEL_UNAVAILABLE = 2
Failures = list[tuple[int, str]]  # (line number, the one line said)


class LineSession(Protocol):
    """What the loops use of the session (repl/session.py's Session)."""

    interactive: bool
    next_input: str
    hooks: LineHooks
    replaying: ReplayStack
    finished_line: FinishedLine | None

    @property
    def history(self) -> InvokeHistory: ...

    def say(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def handle_line(self, line: str) -> Outcome: ...

    def guarded(self, action: Callable[[], Flow], line: str) -> Outcome: ...

    def stop_requested(self) -> bool: ...  # Ctrl-C came during a command that still finished


def run_interactive(session: LineSession, prompt_session: PromptSession[str]) -> int:
    """Prompt until Ctrl-D, q, exit or quit.  Ctrl-C at the prompt only clears the line."""
    while True:
        default, session.next_input = session.next_input, ""
        try:
            line = prompt_session.prompt(PROMPT, default=default)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if session.handle_line(line).flow is Flow.QUIT:
            break
    session.say("goodbye!")
    return 0


def run_source(session: LineSession, lines: Iterable[SourceLine], *, source: str) -> int:
    """Run piped or --from_file lines, echoing each as '#line'; the exit status: 0, 1 if any
    line failed, 2 if the run stopped because the model cannot be loaded, 130 on Ctrl-C
    (which stops the whole run: the line it stopped is said, with the failures before it)."""
    failures: Failures = []
    seen: list[SourceLine] = []
    try:
        fatal = run_lines(session, _counted(lines, seen), failures, where=source)
    except KeyboardInterrupt as exc:
        _say_failures(session, failures, source)
        resume = "; run the same command with --resume to finish" \
            if session.hooks is not NO_HOOKS else ""
        said = str(exc) if isinstance(exc, SourceInterrupted) else "interrupted"
        session.error(f"{said}{resume}")
        return 130
    _say_failures(session, failures, source)
    if fatal:
        session.error(f"stopped: no line of {source} can run without a model")
        return STATUS_MODEL_UNAVAILABLE
    if not seen:
        session.say(f">> {source}: no prompt lines in it (only blank lines or # comments, or "
                    f"nothing), so nothing was run")
    session.say("goodbye!")
    return 1 if failures else 0


def _counted(lines: Iterable[SourceLine], seen: list[SourceLine]) -> Iterator[SourceLine]:
    """``lines``, keeping the first that is not blank or a comment in ``seen`` (to say so when
    there was none)."""
    for item in lines:
        if not seen and (item.text is None or not is_skipped(item.text)):
            seen.append(item)
        yield item


def _say_failures(session: LineSession, failures: Failures, source: str) -> None:
    if failures:
        session.error(f"{len(failures)} line(s) of {source} failed:")
        for number, message in failures:
            session.error(f"  line {number}: {message}")


def run_lines(session: LineSession, lines: Iterable[SourceLine], failures: Failures, *,
              where: str) -> bool:
    """Run ``lines`` (of ``where``) with the batch hooks around each, adding each failure to
    ``failures``; True when the run stopped because the model cannot be loaded.  Ctrl-C
    during a line raises SourceInterrupted naming it (the innermost file's, for !replay)."""
    hooks = NO_HOOKS if session.replaying else session.hooks  # not a replayed file's
    for item in lines:
        if item.text is None:
            message = f"error: {item.problem}"
            session.error(message)
            failures.append((item.number, message))
            continue
        line = item.text
        if is_skipped(line):
            continue
        skip, hook_error = _hook(session, partial(hooks.before, item.number, line), line)
        if skip:
            continue
        session.say(f"#{shown(line)}")
        if not session.interactive:  # typed lines are recorded by the prompt itself
            session.history.append_string(without_prompt(line))
        try:
            outcome = session.handle_line(line)
        except SourceInterrupted:
            raise  # a nested !replay's line: that file and line are the ones to name
        except KeyboardInterrupt:
            raise SourceInterrupted(item.number, where) from None
        _, after_error = _hook(session, partial(hooks.after, item.number, line,
                                                session.finished_line, outcome.error), line)
        for said in (hook_error, outcome.error, after_error):
            if said is not None:
                failures.append((item.number, said))
        if outcome.fatal:
            return True
        if not session.interactive or session.replaying:
            if session.stop_requested():  # this line finished and is recorded; no more
                raise SourceInterrupted(item.number, where)
        if outcome.flow is Flow.QUIT:
            break
    return False


def _hook(session: LineSession, call: Callable[[], Any], line: str) -> tuple[Any, str | None]:
    """A batch hook (the manifest, --resume) under the line's error policy: (its result,
    None), or (None, the one line said) when it failed (a bug's traceback goes to the log;
    a failed ``before`` skips nothing, so the line runs)."""
    result: list[Any] = []

    def run() -> Flow:
        result.append(call())
        return Flow.GO_ON

    outcome = session.guarded(run, f"{line}  (in the batch run's line hook)")
    return (result[0] if result else None), outcome.error


def replay_file(session: LineSession, path: Path) -> Flow:
    """!replay: run a file's lines here; fails (one line) if any of them failed."""
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise DreamlineError(f"!replay {path}: cannot read it: {exc.strerror}") from exc
    if b"\0" in data[:8192]:  # a picture or other binary file: one line, not one per "line"
        hint = "; !fetch reads the command stored in a picture" if data.startswith(
            (b"\x89PNG", b"\xff\xd8", b"RIFF", b"GIF8", b"II*", b"MM\0*", b"BM")) else ""
        raise DreamlineError(f"!replay {path}: not a text file; expected prompt lines, one a "
                             f"line{hint}")
    failures: Failures = []
    with session.replaying.entered(path):
        fatal = run_lines(session, decode_lines(data.splitlines(keepends=True)), failures,
                          where=str(path))
    if fatal:
        raise ModelUnavailable(ModelError(f"!replay {path}: stopped at a line that needed it"))
    if failures:
        numbers = ", ".join(str(number) for number, _ in failures)
        raise DreamlineError(f"!replay {path}: line(s) {numbers} failed")
    return Flow.GO_ON
