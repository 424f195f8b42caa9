"""Tab completion for the invoke> line.

What is completed comes from the two tables: switch names and each switch's completion kind
from switches.py, command names and each command's argument kind from commands.py.  The only
knowledge here is how to complete a kind: paths (directories get '/', spaces get quotes),
seeds used this session, samplers and model names; and prompt words from the current model's
vocabulary (repl/vocabulary.py), when it has one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from dreamline.repl.commands import COMMANDS, find_command
from dreamline.words import quote_path, split_for_completion

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class SwitchSpec:
    """What the completer needs of one switch: every spelling and how to complete its value."""

    names: tuple[str, ...]  # e.g. ("-I", "--init_img")
    kind: str  # "image", "file", "seed", "sampler", "model", "none" (a flag), or anything else
    help: str = ""
    choices: tuple[str, ...] = ()


def _tokens(text: str) -> tuple[list[str], str]:
    """The finished words before the cursor (quotes removed) and the word being typed, raw (its
    opening quote kept, so a completion replaces it whole); words.py is the one tokenizer."""
    words, typing = split_for_completion(text)
    return [word.text for word in words], text[typing.start:]


def path_completions(partial: str, *, suffixes: tuple[str, ...] | None,
                     base: Path | None = None) -> Iterator[Completion]:
    """Files (only those ending in ``suffixes`` when given) and directories matching ``partial``.

    ``partial`` is the raw word being typed, quotes and all; each completion replaces all of it.
    """
    typed = split_for_completion(partial)[1].text
    expanded = os.path.expanduser(typed)
    folder, prefix = os.path.split(expanded)
    shown_folder = os.path.split(typed)[0]
    where = Path(folder) if folder else Path(".")
    if base is not None and not where.is_absolute():
        where = base / where
    try:
        entries = sorted(os.scandir(where), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        if entry.name.startswith(".") and not prefix.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if not is_dir and suffixes is not None and not entry.name.lower().endswith(suffixes):
            continue
        shown = os.path.join(shown_folder, entry.name) + ("/" if is_dir else "")
        yield Completion(quote_path(shown, closed=not is_dir), start_position=-len(partial),
                         display=entry.name + ("/" if is_dir else ""))


class InvokeCompleter(Completer):
    """Completes switch names, switch values by kind, '!' commands and their arguments."""

    def __init__(self, switches: Iterable[SwitchSpec], *,
                 seeds: Callable[[], Iterable[int]] = lambda: (),
                 models: Callable[[], Iterable[str]] = lambda: (),
                 samplers: Iterable[str] = (),
                 embeddings: Callable[[], Iterable[str]] = lambda: (),
                 vocabulary: Callable[[], Iterable[str]] = lambda: ()) -> None:
        self.switches = tuple(switches)
        self.seeds = seeds
        self.models = models
        self.embeddings = embeddings  # read only when a prompt word starting with '<' is completed
        self.vocabulary = vocabulary  # read only when a prompt word is completed
        self.samplers = tuple(samplers)
        self._by_name = {name: spec for spec in self.switches for name in spec.names}

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.lstrip().startswith("!"):
            yield from self._command_completions(text.lstrip())
            return
        words, partial = _tokens(text)
        previous = words[-1] if words else None
        spec = self._by_name.get(previous) if previous is not None else None
        if spec is not None and spec.kind != "none":
            # a value: "-S -1" is a value too, so this comes before switch names
            yield from self._value_completions(spec, partial)
            return
        if partial.startswith("-"):
            yield from self._switch_completions(partial)
        elif partial.startswith("<"):  # a textual-inversion embedding: <name>
            from dreamline.prompt_syntax import complete_embedding

            for word in complete_embedding(partial, self.embeddings()):
                yield Completion(word, start_position=-len(partial), display_meta="embedding")
        elif partial.strip("\"'"):
            yield from self._word_completions(text)

    def _word_completions(self, text: str) -> Iterator[Completion]:
        """Captions of the model's vocabulary that start with the prompt words being typed.

        The longest typed tail that begins some caption wins: "deciduous tr" offers
        "deciduous tree", "fo" offers "fox" and "fox face"; the tail stops at a quote."""
        tail = text[max(text.rfind('"'), text.rfind("'")) + 1:]
        words = tail.split(" ")
        captions = list(self.vocabulary())
        for first in range(len(words)):
            typed = " ".join(words[first:])
            if not typed or typed[0] == " " or typed.startswith("-"):
                continue
            wanted = typed.lower()
            found = sorted((c for c in captions if c.lower().startswith(wanted) and c != typed),
                           key=lambda c: (len(c), c))
            if found:
                for caption in found:
                    yield Completion(caption, start_position=-len(typed), display_meta="known")
                return

    def _switch_completions(self, partial: str) -> Iterator[Completion]:
        """Each spelling that starts with ``partial``, with the space after it (as a shell
        completes a word), so the value typed next is not glued to the switch."""
        for spec in self.switches:
            for name in spec.names:
                if name.startswith(partial):
                    yield Completion(name + " ", start_position=-len(partial), display=name,
                                     display_meta=spec.help)

    def _value_completions(self, spec: SwitchSpec, partial: str) -> Iterator[Completion]:
        yield from self._kind_completions(spec.kind, partial, spec.choices)

    def _kind_completions(self, kind: str, partial: str,
                          choices: tuple[str, ...] = ()) -> Iterator[Completion]:
        if kind == "image":
            yield from path_completions(partial, suffixes=IMAGE_SUFFIXES)
        elif kind == "file":
            yield from path_completions(partial, suffixes=None)
        elif kind == "seed":
            seen: set[str] = set()
            for seed in reversed(list(self.seeds())):  # newest first
                text = str(seed)
                if text.startswith(partial) and text not in seen:
                    seen.add(text)
                    yield Completion(text, start_position=-len(partial))
        elif kind in ("sampler", "choice"):
            for choice in choices or self.samplers:
                if choice.startswith(partial):
                    yield Completion(choice, start_position=-len(partial))
        elif kind == "model":
            for name in self.models():
                if name.startswith(partial):
                    yield Completion(name, start_position=-len(partial))

    def _command_completions(self, text: str) -> Iterator[Completion]:
        body = text[1:]
        if " " not in body:
            for command in COMMANDS:
                if command.bang and command.pattern is None and command.name.startswith(body):
                    # a command that takes an argument gets the space before it (!sw -> !switch )
                    text = command.name + ("" if command.arg_kind == "none" else " ")
                    yield Completion(text, start_position=-len(body),
                                     display="!" + command.name, display_meta=command.help)
            return
        word, _, rest = body.partition(" ")
        found = find_command(word, bang=True)
        if found is None:
            return
        _, partial = _tokens(rest)
        if found.arg_kind in ("image", "file", "model"):
            yield from self._kind_completions(found.arg_kind, partial)
