"""The session's line hooks for a --from_file run: record finished lines, skip them on resume."""

from __future__ import annotations

from collections.abc import Callable

from dreamline.batch.manifest import Manifest, ManifestError, grid_file
from dreamline.repl.commands import is_command_line
from dreamline.repl.context import FinishedLine
from dreamline.repl.lines import shown, without_prompt
from dreamline.repl.session import Session
from dreamline.repl.state import LastCommand


class ManifestHooks:
    """``Session.hooks`` for a file run: every finished prompt line goes into the manifest; with
    ``resume`` the lines recorded by the earlier run are skipped (and recalled for -S/-I -1)."""

    def __init__(self, session: Session, manifest: Manifest, *, resume: bool,
                 say: Callable[[str], None], error: Callable[[str], None]) -> None:
        self.session = session
        self.manifest = manifest
        self.resume = resume
        self.say = say
        self.error = error
        self.skipped = 0
        self._warned = False

    def would_skip(self, number: int, line: str) -> bool:
        """True when ``before`` will skip this line (the Ray driver sends it nowhere)."""
        return (self.resume and not is_command_line(without_prompt(line))
                and self.manifest.finished(number, line) is not None)

    def before(self, number: int, line: str) -> bool:
        """True when ``--resume`` finds this line done; its images become the previous
        command's (for a following -S -1 / -I -1)."""
        done = self.manifest.finished(number, line) if self.would_skip(number, line) else None
        if done is None:
            if self.resume and self.manifest.changed(number, line):
                self.say(f">> line {number} changed since the earlier run finished it; running "
                         f"it again")
            return False
        images = list(done.files[:len(done.seeds)])
        self.say(f"#{shown(line)}")
        self.say(f">> line {number} was done by the earlier run ({', '.join(images)}); skipped")
        produced = LastCommand(list(done.seeds), images)
        self.session.recall.finish(produced)
        self.session.recall.seeds_used.extend(done.seeds)
        self.skipped += 1
        return True

    def after(self, number: int, line: str, finished: FinishedLine | None,
              error: str | None) -> None:
        if finished is None or error is not None:
            return
        files = list(finished.produced.images)
        seeds = list(finished.produced.seeds)
        grid = grid_file(finished.request, files, seeds)
        try:
            self.manifest.record(number, line, finished.request,
                                 files + ([grid] if grid else []), seeds)
        except ManifestError as exc:
            if not self._warned:  # once: the run itself goes on
                self.error(f"warning: {exc}; --resume will redo this line and later ones")
                self._warned = True
