"""Which files ``!replay`` is running now, so a file that replays itself (directly or through
other files) is found at once and said in one line, not once per nesting level."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dreamline.errors import DreamlineError

MAX_REPLAY_DEPTH = 8


class ReplayStopped(DreamlineError):
    """A !replay that cannot go on (a file replaying itself, nesting too deep): it stops every
    enclosing replay and is said once, by the line that started the outermost one."""


class ReplayStack:
    """The files being replayed, outermost first (resolved, and as typed for messages)."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, str]] = []

    def __bool__(self) -> bool:
        return bool(self._files)

    @contextmanager
    def entered(self, path: Path) -> Iterator[None]:
        """Replay ``path`` inside the current ones; ReplayStopped naming the chain when it is
        already being replayed (a cycle) or the nesting is deeper than MAX_REPLAY_DEPTH."""
        resolved = path.expanduser().resolve()
        seen = [resolved_path for resolved_path, _ in self._files]
        if resolved in seen:
            chain = " -> ".join([typed for _, typed in self._files[seen.index(resolved):]]
                                + [str(path)])
            raise ReplayStopped(f"!replay {path}: {path} replays itself ({chain}); stopped "
                                "the replay there")
        if len(self._files) >= MAX_REPLAY_DEPTH:
            raise ReplayStopped(f"!replay {path}: replays nest more than {MAX_REPLAY_DEPTH} "
                                "files deep; stopped the replay there")
        self._files.append((resolved, str(path)))
        try:
            yield
        finally:
            self._files.pop()
