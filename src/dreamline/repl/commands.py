"""The ONE table of REPL commands: name, usage, argument kind, help and handler.

`!help`, the completer, the validator and dispatch all read this table, so a command added here
is documented, completed and accepted everywhere at once.  Handlers are typed against the small
CommandContext protocol (repl/context.py); this module does not import the session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dreamline.errors import DreamlineError
from dreamline.repl.context import CommandContext, Flow
from dreamline.repl.lines import QUIT_WORDS, shown
from dreamline.repl.vocabulary import show_vocabulary
from dreamline.words import command_argument

__all__ = ["COMMANDS", "Command", "Flow", "find_command", "help_lines", "is_command_line",
           "split_command"]

ArgKind = Literal["none", "image", "file", "model", "text"]
Handler = Callable[[CommandContext, str, str], Flow]  # (context, typed name, argument)
_HASH = re.compile(r"\[([0-9a-fA-F]+)\]")


@dataclass(frozen=True)
class Command:
    """One REPL command.  ``name`` is typed after '!' unless ``bang`` is false (``q``)."""

    name: str
    usage: str  # the argument part of the help line, e.g. "<png>"
    arg_kind: ArgKind
    help: str
    handler: Handler
    bang: bool = True
    pattern: re.Pattern[str] | None = None  # for !N: matches the typed name instead of equality
    aliases: tuple[str, ...] = ()  # other spellings (q: exit, quit)

    @property
    def shown_name(self) -> str:
        return ("!" if self.bang else "") + self.name

    def matches(self, word: str) -> bool:
        """``word`` names this command; after '!' in any case (``!HELP``), since a command's
        name is a keyword, but a bare ``q``/``exit`` only as written (``Exit`` is a prompt)."""
        if self.pattern is not None:
            return self.pattern.fullmatch(word) is not None
        if self.bang:
            word = word.lower()
        return word == self.name or word in self.aliases


def _need_arg(command: str, arg: str, what: str) -> str:
    if not arg:
        raise DreamlineError(f"!{command}: needs {what}")
    return arg


def _path_arg(command: str, arg: str, what: str) -> str:
    """A ! command's path (or model) argument; an empty or blank one (``!switch ""``) is
    refused, since it would name the current directory."""
    path = command_argument(_need_arg(command, arg, what))
    if not path.strip():
        raise DreamlineError(f"!{command}: {arg} is an empty path; expected {what}")
    return path


def _made_with(path: Path) -> tuple[str | None, str | None]:
    """(model name, model hash) stored in the image's sd-metadata; Nones when not stored."""
    from dreamline.repl.fetch import read_metadata

    try:
        meta = read_metadata(path)
    except DreamlineError:
        return None, None
    name = meta.get("model_weights", meta.get("model_id"))  # 2.x wrote model_weights
    digest = meta.get("model_hash")
    return (str(name) if name else None), (str(digest) if digest else None)


def _other_model_note(context: CommandContext, path: Path) -> str | None:
    """A line saying the image was made with another model than the current one, if so."""
    name, digest = _made_with(path)
    label = context.models.label
    loaded = _HASH.search(label)
    current_name = label.split(" ", 1)[0]
    if digest is not None and loaded is not None:
        if digest.lower().startswith(loaded.group(1).lower()) or \
                loaded.group(1).lower().startswith(digest.lower()):
            return None
    elif name is None or name == current_name:
        return None
    made = f"{name} [{digest}]" if name and digest else (name or f"[{digest}]")
    return (f">> note: {path.name} was made with model {made}, not {label}; "
            f"!switch to it to reproduce the image")


def _fetch(context: CommandContext, word: str, arg: str) -> Flow:
    path = context.find_image(_path_arg("fetch", arg, "a PNG file written by dreamline"))
    from dreamline.repl.fetch import fetch

    fetched = fetch(path, loras=context.local_loras())
    if context.interactive:
        context.say(f">> fetched the command of {path}; edit it and press Enter")
    else:
        context.say(f">> the command of {path}:")
    context.set_next_input(fetched.command)
    for note in fetched.notes:  # what the command cannot replay
        context.say(f">> {note}")
    other = _other_model_note(context, path)
    if other is not None:
        context.say(other)
    return Flow.GO_ON


def _listing(context: CommandContext, entries: list[tuple[int, str]]) -> None:
    for number, line in entries:
        context.say(f"{number:4d}  {shown(line)}")


def _history(context: CommandContext, word: str, arg: str) -> Flow:
    entries = context.history.numbered()
    if not entries:
        context.say("the history is empty")
    _listing(context, entries)
    return Flow.GO_ON


def _search(context: CommandContext, word: str, arg: str) -> Flow:
    text = _need_arg("search", arg, "some text to look for")
    found = context.history.search(text)
    count = len(context.history.numbered())
    if found and found[-1] == (count, context.current_line):
        found = found[:-1]  # the !search line itself, already in the history
    if not found:
        context.say(f"no history line contains {text!r}")
    _listing(context, found)
    return Flow.GO_ON


def _recall_line(context: CommandContext, word: str, arg: str) -> Flow:
    context.set_next_input(context.history.line(int(word)))
    return Flow.GO_ON


def _clear(context: CommandContext, word: str, arg: str) -> Flow:
    context.history.clear()
    context.say("history cleared")
    return Flow.GO_ON


def _models(context: CommandContext, word: str, arg: str) -> Flow:
    if context.models.problem is not None:  # the models file is unusable: said, then the rest
        context.error(f"error: {context.models.problem}")
    for line in context.models.describe():
        context.say(line)
    return Flow.GO_ON


def _embeddings(context: CommandContext, word: str, arg: str) -> Flow:
    found = context.embeddings()
    lines = found.describe() if found is not None else []
    if not lines:
        context.say(">> no textual-inversion embeddings: put .pt/.safetensors files in an "
                    "embeddings/ folder beside the models file, or give --embedding_path")
    for line in lines:
        context.say(line)
    return Flow.GO_ON


def _switch(context: CommandContext, word: str, arg: str) -> Flow:
    before = context.models.label
    context.models.switch(_path_arg("switch", arg, "a model name (see !models) or path"))
    if context.models.label == before:  # the defaults said at start stay: say why nothing is
        context.say(f">> already using {before}; nothing changed")
    context.refresh_defaults()  # the new model may have its own default -C
    return Flow.GO_ON


def _replay(context: CommandContext, word: str, arg: str) -> Flow:
    path = Path(_path_arg("replay", arg, "a file of prompt lines"))
    return context.replay_file(path)


def _help(context: CommandContext, word: str, arg: str) -> Flow:
    for line in help_lines():
        context.say(line)
    return Flow.GO_ON


def _quit(context: CommandContext, word: str, arg: str) -> Flow:
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
    Command("embeddings", "", "none", "list the textual-inversion embeddings (<name> in a "
            "prompt)", _embeddings),
    Command("vocabulary", "[word]", "text", "list the words the current model knows (those "
            "with word)", show_vocabulary),
    Command("replay", "<file>", "file", "run each line of a file as if typed", _replay),
    Command("help", "", "none", "this list; '-h' shows the switches of a prompt line", _help),
    Command("?", "", "none", "this list too (so is help alone; \"help\" quoted is a prompt)",
            _help, bang=False, aliases=("help",)),
    Command("q", "", "none", "quit (also Q, exit, quit or Ctrl-D)", _quit, bang=False,
            aliases=QUIT_WORDS[1:]),
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
        shown_as = f"{command.shown_name} {command.usage}".strip()
        if command.pattern is not None:
            shown_as = "!N"
        lines.append(f"  {shown_as:<{width}}  {command.help}")
    lines.append("Anything else is a prompt line: \"prompt words\" -s 50 -S 42 ... ('-h' for help)")
    return lines
