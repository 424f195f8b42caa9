"""The ONE table of REPL commands: name, argument kind, help and handler.

`!help`, the completer and the validator all read this table, so a command added here is
documented, completed and accepted everywhere at once.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dreamline.errors import DreamlineError

if TYPE_CHECKING:
    from dreamline.repl.session import Session

ArgKind = Literal["none", "image", "file", "model", "text"]


class Flow(enum.Enum):
    """What the loop does after a command."""

    GO_ON = "go on"
    QUIT = "quit"


@dataclass(frozen=True)
class Command:
    """One REPL command.  ``name`` is typed after '!' unless ``bang`` is false (``q``)."""

    name: str
    usage: str  # the argument part of the help line, e.g. "<png>"
    arg_kind: ArgKind
    help: str
    handler: Callable[["Session", str, str], Flow]  # (session, typed name, argument)
    bang: bool = True
    pattern: re.Pattern[str] | None = None  # for !N: matches the typed name instead of equality

    @property
    def shown_name(self) -> str:
        return ("!" if self.bang else "") + self.name

    def matches(self, word: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(word) is not None
        return word == self.name


def _need_arg(command: str, arg: str, what: str) -> str:
    if not arg:
        raise DreamlineError(f"!{command}: needs {what}")
    return arg


def _unquote(arg: str) -> str:
    """A path typed with or without quotes (the completer quotes paths with spaces)."""
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
        return arg[1:-1]
    return arg


def _fetch(session: "Session", word: str, arg: str) -> Flow:
    path = session.find_image(_unquote(_need_arg("fetch", arg, "a PNG file written by dreamline")))
    from dreamline.repl.fetch import fetch

    fetched = fetch(path)
    session.set_next_input(fetched.command)
    session.say(f">> fetched the command of {path}; edit it and press Enter")
    for note in fetched.notes:  # what the command cannot replay
        session.say(f">> {note}")
    return Flow.GO_ON


def _history(session: "Session", word: str, arg: str) -> Flow:
    entries = session.history.numbered()
    if not entries:
        session.say("the history is empty")
    for number, line in entries:
        session.say(f"{number:4d}  {line}")
    return Flow.GO_ON


def _search(session: "Session", word: str, arg: str) -> Flow:
    text = _need_arg("search", arg, "some text to look for")
    found = session.history.search(text)
    if not found:
        session.say(f"no history line contains {text!r}")
    for number, line in found:
        session.say(f"{number:4d}  {line}")
    return Flow.GO_ON


def _recall_line(session: "Session", word: str, arg: str) -> Flow:
    session.set_next_input(session.history.line(int(word)))
    return Flow.GO_ON


def _clear(session: "Session", word: str, arg: str) -> Flow:
    session.history.clear()
    session.say("history cleared")
    return Flow.GO_ON


def _models(session: "Session", word: str, arg: str) -> Flow:
    for line in session.runner.describe_models():
        session.say(line)
    return Flow.GO_ON


def _switch(session: "Session", word: str, arg: str) -> Flow:
    session.runner.switch_model(_unquote(_need_arg("switch", arg, "a model name (see !models)")))
    session.refresh_defaults()  # the new model may have its own default -C
    return Flow.GO_ON


def _replay(session: "Session", word: str, arg: str) -> Flow:
    path = Path(_unquote(_need_arg("replay", arg, "a file of prompt lines")))
    return session.replay_file(path)


def _help(session: "Session", word: str, arg: str) -> Flow:
    for line in help_lines():
        session.say(line)
    return Flow.GO_ON


def _quit(session: "Session", word: str, arg: str) -> Flow:
    return Flow.QUIT


COMMANDS: tuple[Command, ...] = (
    Command("fetch", "<png>", "image", "put the command stored in an image on the input line",
            _fetch),
    Command("history", "", "none", "list the command history, numbered", _history),
    Command("search", "<text>", "text", "list the history lines that contain text", _search),
    Command("N", "", "none", "put history line N on the input line (e.g. !12)", _recall_line,
            pattern=re.compile(r"[0-9]+")),
    Command("clear", "", "none", "clear the command history", _clear),
    Command("models", "", "none", "list the models in the models file", _models),
    Command("switch", "<model>", "model", "load another model by name or path", _switch),
    Command("replay", "<file>", "file", "run each line of a file as if typed", _replay),
    Command("help", "", "none", "this list; '-h' shows the switches of a prompt line", _help),
    Command("q", "", "none", "quit (also Ctrl-D)", _quit, bang=False),
)


def find_command(word: str, *, bang: bool) -> Command | None:
    """The command typed as ``word`` (without its '!'), or None."""
    for command in COMMANDS:
        if command.bang == bang and command.matches(word):
            return command
    return None


def split_command(line: str) -> tuple[bool, str, str]:
    """``'!fetch  x.png '`` -> (True, 'fetch', 'x.png'); a line without '!' gives bang=False."""
    text = line.strip()
    bang = text.startswith("!")
    if bang:
        text = text[1:]
    word, _, arg = text.partition(" ")
    return bang, word, arg.strip()


def is_command_line(line: str) -> bool:
    """True for '!...' lines and for a bare table command without '!' such as 'q'."""
    bang, word, arg = split_command(line)
    if bang:
        return True
    return find_command(word, bang=False) is not None and not arg


def help_lines() -> list[str]:
    width = max(len(f"{c.shown_name} {c.usage}".strip()) for c in COMMANDS)
    lines = ["Commands:"]
    for command in COMMANDS:
        shown = f"{command.shown_name} {command.usage}".strip()
        if command.pattern is not None:
            shown = "!N"
        lines.append(f"  {shown:<{width}}  {command.help}")
    lines.append("Anything else is a prompt line: \"prompt words\" -s 50 -S 42 ... ('-h' for help)")
    return lines
