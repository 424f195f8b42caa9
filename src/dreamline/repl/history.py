"""Command history: the prompt_toolkit History behind up-arrow and auto-suggest, plus the
numbered listing, search and clearing that !history, !search, !N and !clear need.

The file format is prompt_toolkit's FileHistory format (``+line`` entries after a ``# date``
line), so an existing .invoke_history written by FileHistory reads back unchanged.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path

from prompt_toolkit.history import History

from dreamline.errors import DreamlineError
from dreamline.repl.lines import QUIT_WORDS, decode_lines


def _is_quit(line: str) -> bool:
    """A bare ``q``/``quit``/``exit`` (as the command table reads them: as written, alone)."""
    return line.strip() in QUIT_WORDS


class InvokeHistory(History):
    """History kept in memory (oldest first) and, when ``persist`` is true, appended to a file.

    Non-interactive runs (piped lines, --from_file) read the file so !history still shows the
    earlier sessions, but do not write to it: replaying a file should not flood the history.
    """

    def __init__(self, path: Path | None, *, persist: bool = True) -> None:
        super().__init__()
        self.path = path
        self.persist = persist and path is not None
        self.problems: list[str] = []  # lines of the file that were skipped, and why
        self._lines: list[str] = \
            _read_history_file(path, self.problems) if path is not None else []

    # prompt_toolkit's side: newest first for loading, oldest first for get_strings.
    async def load(self) -> AsyncGenerator[str, None]:
        for line in reversed(self._lines):
            yield line

    def load_history_strings(self) -> Iterable[str]:
        return reversed(self._lines)

    def get_strings(self) -> list[str]:
        return list(self._lines)

    def append_string(self, string: str) -> None:
        """Record a line, except ``q``/``quit``/``exit``: recalling one would only quit."""
        if _is_quit(string):
            return
        self._lines.append(string)
        self.store_string(string)

    def store_string(self, string: str) -> None:
        if not self.persist or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(f"\n# {datetime.datetime.now()}\n")
                for part in string.split("\n"):
                    handle.write(f"+{part}\n")
        except OSError as exc:  # a read-only outdir must not stop the REPL
            raise DreamlineError(f"cannot write history file {self.path}: {exc.strerror}") from exc

    # The REPL's side: numbered from 1, oldest first, as !history shows them.
    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self._lines, start=1))

    def search(self, text: str) -> list[tuple[int, str]]:
        """Entries containing ``text`` (case-insensitive), with their !N numbers."""
        needle = text.lower()
        return [(n, line) for n, line in self.numbered() if needle in line.lower()]

    def line(self, number: int) -> str:
        """Entry ``number`` as !history numbers it; a DreamlineError if there is none."""
        if not self._lines:
            raise DreamlineError("the history is empty")
        if not 1 <= number <= len(self._lines):
            raise DreamlineError(f"!{number}: no such history line; expected 1 to "
                                 f"{len(self._lines)}")
        return self._lines[number - 1]

    def clear(self) -> None:
        """Forget every entry, in memory and (when persistent) on disk."""
        self._lines.clear()
        if self.persist and self.path is not None and self.path.exists():
            try:
                self.path.write_text("", encoding="utf-8")
            except OSError as exc:
                raise DreamlineError(f"cannot clear history file {self.path}: "
                                     f"{exc.strerror}") from exc


def _read_history_file(path: Path, problems: list[str]) -> list[str]:
    """Entries of a FileHistory-format file, oldest first; a missing file is an empty history.

    A line that is not UTF-8 is skipped and described in ``problems`` (line number, offset).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError:
        return []  # unreadable history is not worth refusing to start over
    entries: list[str] = []
    current: list[str] = []
    for item in decode_lines(raw.splitlines(keepends=True)):
        if item.text is None:
            problems.append(f"history file {path}: {item.problem}")
            continue
        line = item.text
        if line.startswith("+"):
            current.append(line[1:])
        elif current:
            entries.append("\n".join(current))
            current = []
    if current:
        entries.append("\n".join(current))
    return entries
