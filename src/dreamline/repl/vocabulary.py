"""The words a model knows: its vocabulary file, ``!vocabulary [filter]`` and prompt completion.

A model may ship a list of the captions it was trained on: ``vocabulary.txt`` inside a diffusers
folder, or ``<name>.vocabulary.txt`` beside a single-file checkpoint.  The built-in demo model has
one (src/dreamline/data/demo/vocabulary.txt).  Format, UTF-8 text:

    # comment lines (shown at the top of !vocabulary)
    fox face | fox          <- one picture a line: its caption, then other words for it

A model without the file knows no fixed list: any words work (a real SD model).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dreamline.errors import DreamlineError
from dreamline.repl.context import CommandContext, Flow, ModelManager

__all__ = ["Entry", "Vocabulary", "read_vocabulary", "vocabulary_file", "vocabulary_lines",
           "vocabulary_words", "show_vocabulary"]

FILE_NAME = "vocabulary.txt"
SCREEN_LINES = 20  # entries shown without a filter: about one screen
ALL = "all"  # '!vocabulary all' lists every entry
SEPARATOR = "; "


@dataclass(frozen=True)
class Entry:
    """One picture the model knows: its caption and the other words that ask for it."""

    caption: str
    aliases: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """'fox face (fox)'."""
        return f"{self.caption} ({', '.join(self.aliases)})" if self.aliases else self.caption

    def matches(self, text: str) -> bool:
        """Case-insensitive: ``text`` is part of the caption or of an alias."""
        needle = text.lower()
        return any(needle in word.lower() for word in (self.caption, *self.aliases))


@dataclass(frozen=True)
class Vocabulary:
    """A model's vocabulary file, read."""

    path: Path
    notes: tuple[str, ...]  # the comment lines, without '#'
    entries: tuple[Entry, ...]

    @property
    def captions(self) -> tuple[str, ...]:
        """Every caption and alias, each once, in file order (what completion offers)."""
        words = (word for entry in self.entries for word in (entry.caption, *entry.aliases))
        return tuple(dict.fromkeys(words))


def vocabulary_file(model_path: Path) -> Path:
    """Where a model's vocabulary lives: in its folder, or beside its single file."""
    if model_path.is_dir():
        return model_path / FILE_NAME
    return model_path.with_name(f"{model_path.stem}.{FILE_NAME}")


def read_vocabulary(model_path: Path) -> Vocabulary | None:
    """The vocabulary of the model at ``model_path``, or None when it has no vocabulary file.

    Raises DreamlineError (one line) when the file exists but cannot be read as UTF-8 text."""
    path = vocabulary_file(model_path)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read(path: Path, mtime_ns: int, size: int) -> Vocabulary:
    """Read once per file version (the cache key includes its time and size)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DreamlineError(f"the vocabulary file {path} cannot be read: {exc}") from exc
    notes, entries = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            notes.append(line[1:].strip())
        elif line:
            words = [word.strip() for word in line.split("|") if word.strip()]
            entries.append(Entry(words[0], tuple(words[1:])))
    return Vocabulary(path, tuple(notes), tuple(entries))


def _model_path(models: ModelManager) -> tuple[str, Path | None]:
    """(the current model's label, its path); loading it if needed (ModelError: one line)."""
    model = models.current()
    path = getattr(model, "path", None)  # a LoadedModel; a stand-in without one has no file
    return models.label, path if isinstance(path, Path) else None


def vocabulary_words(models: ModelManager) -> list[str]:
    """The current model's captions for completion; [] without a vocabulary or a usable model."""
    try:
        _, path = _model_path(models)
        found = read_vocabulary(path) if path is not None else None
    except DreamlineError:
        return []
    return list(found.captions) if found is not None else []


def _packed(items: list[str], width: int) -> list[str]:
    """``items`` in order, as many to a line as fit ``width`` characters, separated by '; '."""
    lines: list[str] = []
    line = ""
    for item in items:
        joined = f"{line}{SEPARATOR}{item}" if line else item
        if line and len(joined) > width:
            lines.append(line)
            joined = item
        line = joined
    return lines + ([line] if line else [])


def vocabulary_lines(vocabulary: Vocabulary, name: str, text: str = "", *,
                     width: int = 80) -> list[str]:
    """What ``!vocabulary [text]`` prints for ``vocabulary`` of model ``name``.

    No ``text``: the notes and about one screen of entries, then how to see the rest; ``all``:
    every entry; other text: the entries whose caption or alias contains it (case-insensitive).
    """
    total = len(vocabulary.entries)
    if text.lower() == ALL:  # a keyword: '!vocabulary ALL' is '!vocabulary all'
        text = ALL
    if text and text != ALL:
        found = [entry.shown for entry in vocabulary.entries if entry.matches(text)]
        if not found:
            return [f">> no entry of {name}'s vocabulary ({total} pictures) contains {text!r}; "
                    f"other words still run, but the model never learnt them"]
        return [f">> {len(found)} of {name}'s {total} pictures match {text!r}:",
                *_packed(found, width)]
    lines = [f">> {name} knows {total} pictures ({len(vocabulary.captions)} captions, from "
             f"{vocabulary.path.name})", *(f">> {note}" for note in vocabulary.notes)]
    shown = [entry.shown for entry in vocabulary.entries]
    rows = _packed(shown, width)
    if text == ALL or len(rows) <= SCREEN_LINES:
        return lines + rows
    more = len(shown) - sum(row.count(SEPARATOR) + 1 for row in rows[:SCREEN_LINES])
    return lines + rows[:SCREEN_LINES] + [
        f">> ... and {more} more: '!vocabulary WORD' lists those with WORD (e.g. "
        f"'!vocabulary tree'), '!vocabulary {ALL}' lists every one"]


def show_vocabulary(context: CommandContext, word: str, arg: str) -> Flow:
    """The ``!vocabulary [filter]`` handler."""
    label, path = _model_path(context.models)
    found = read_vocabulary(path) if path is not None else None
    if found is None:
        context.say(f">> {label} has no vocabulary list (any words work)")
        return Flow.GO_ON
    name = label.split(" [", 1)[0]
    width = shutil.get_terminal_size().columns
    for line in vocabulary_lines(found, name, arg.strip(), width=width):
        context.say(line)
    return Flow.GO_ON
