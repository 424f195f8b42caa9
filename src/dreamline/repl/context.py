"""The small interfaces the REPL's pieces are written against (no implementation here).

* ``ModelManager``: registry, device, load/switch and the model cache.  The models room writes
  the real one (models/manager.py).
* ``CommandContext``: what a ``!command`` handler may use; the Session provides it.
* ``RequestRunner``: runs one parsed request to files (repl/runner.py; a fake in the tests).
* ``LineHooks``: what a batch run (dreamline.batch) adds around each line of a file.

This module imports nothing else of the REPL, so the command table, the completer and the
session can all depend on it without a cycle.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dreamline.errors import DreamlineError, ModelError

if TYPE_CHECKING:
    from dreamline.repl.history import InvokeHistory
    from dreamline.request import Request

OnSaved = Callable[[Path, int], None]  # (file written, its seed)


class Flow(enum.Enum):
    """What the loop does after a line."""

    GO_ON = "go on"
    QUIT = "quit"


class ModelUnavailable(DreamlineError):
    """The current model cannot be loaded, so no prompt line can run until ``!switch``.

    Raised instead of the manager's ModelError when a *request* needed the model: a
    ``--from_file`` run stops at once on it (every later line would fail the same way).
    """

    def __init__(self, cause: ModelError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class CommandInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command after its finished images were saved and it said so
    (repl/job.py).  At the prompt that ends the command; a file, a pipe or a !replay stops."""


class SourceInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped line ``number`` of ``where`` (a --from_file file, stdin, a !replay file):
    the lines after it were not run."""

    def __init__(self, number: int, where: str) -> None:
        super().__init__(number, where)
        self.number = number
        self.where = where

    def __str__(self) -> str:
        return f"interrupted at line {self.number} of {self.where}; the lines after it were " \
               "not run"


class ModelManager(Protocol):
    """Registry, device, loading and switching; the agreed interface of models/manager.py.

    A load that fails raises ModelError (one line) and is remembered: asking for the same
    source again re-raises at once unless the file changed.
    """

    @property
    def label(self) -> str: ...  # "demo [abc123def0]" or "demo (not loaded yet)"

    @property
    def device_label(self) -> str: ...  # "cpu float32", or "auto" before the first load

    def names(self) -> list[str]: ...  # [] when the models file is unreadable

    def describe(self) -> list[str]: ...  # the !models lines

    @property
    def problem(self) -> str | None: ...  # why the models file is not in use; None: it is

    def default_cfg(self) -> tuple[str, float, str] | None: ...  # (model, cfg_scale, where)

    def default_sampler(self) -> tuple[str, str, str, str] | None: ...  # model, -A, schedule

    def native_size(self) -> tuple[str, int, int] | None: ...  # (model, width, height) declared

    def loaded_multiple(self) -> int | None: ...  # sides' multiple once a model is loaded

    def current(self) -> Any: ...  # LoadedModel: loads the wanted model on first use

    def switch(self, name_or_path: str) -> Any: ...  # on failure the previous one stays

    def release(self) -> None: ...  # free cached models (and CUDA memory)


class RequestRunner(Protocol):
    """Runs one request: every finished image is saved and reported to ``on_saved``."""

    def run(self, request: Request, on_saved: OnSaved) -> None: ...


@dataclass(frozen=True)
class FinishedLine:
    """A prompt line whose every image was written (not cut short by Ctrl-C)."""

    request: Request
    produced: Any  # repl.state.LastCommand: the line's files and seeds

    @classmethod
    def of(cls, request: Request, produced: Any) -> FinishedLine | None:
        """The line, if it wrote every image of ``request``; None when Ctrl-C cut it short."""
        return cls(request, produced) if len(produced.images) == request.iterations else None


@dataclass(frozen=True)
class Outcome:
    """How one line ended: what the loop does next, and the one-line error if it failed."""

    flow: Flow
    error: str | None = None
    fatal: bool = False  # a non-interactive run stops here (the model cannot be loaded)


class LineHooks(Protocol):
    """Around each line of a file (set as ``Session.hooks``): the manifest and ``--resume``."""

    def before(self, number: int, line: str) -> bool: ...  # True: skip it (done before)

    def after(self, number: int, line: str, finished: FinishedLine | None,
              error: str | None) -> None: ...  # finished: None unless every image was written


class NoHooks:
    """The LineHooks of an ordinary run: nothing is skipped or recorded."""

    def before(self, number: int, line: str) -> bool:
        return False

    def after(self, number: int, line: str, finished: FinishedLine | None,
              error: str | None) -> None:
        return None


NO_HOOKS = NoHooks()


class CommandContext(Protocol):
    """What ``!command`` handlers use (the Session implements it)."""

    @property
    def history(self) -> InvokeHistory: ...

    @property
    def models(self) -> ModelManager: ...

    @property
    def current_line(self) -> str: ...  # the line being run (so !search can leave it out)

    @property
    def interactive(self) -> bool: ...  # lines typed at a prompt (not a file or pipe)

    def say(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...  # one line on stderr (red at a terminal)

    def set_next_input(self, text: str) -> None: ...

    def find_image(self, path_text: str) -> Path: ...

    def refresh_defaults(self) -> None: ...  # after !switch: the new model's default -C

    def replay_file(self, path: Path) -> Flow: ...

    def embeddings(self) -> Any: ...  # the session's EmbeddingSet (None: none to offer)

    def local_loras(self) -> Any: ...  # fetch_loras.LocalLoras: the LoRA folder !fetch checks
