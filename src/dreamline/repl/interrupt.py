"""Ctrl-C while a command generates: the first one says "stopping after this step..." at once
and stops at the next step boundary; a second one stops at once, except while a finished image
is being written (that file is completed first, so finished images always stay written).

Without this, Python's own KeyboardInterrupt fell wherever the main thread happened to be, with
nothing said until the command ended.  The handler is installed only around the generation,
in the main thread; anywhere else (a worker thread) Ctrl-C keeps Python's default behaviour.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOPPING = "stopping after this step... (Ctrl-C again to stop at once)"


class StopRequest:
    """The Ctrl-C state of one command: ``check()`` between steps, ``writing()`` around saves."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.requested = False  # a first Ctrl-C came: stop at the next step boundary
        self._writing = 0  # > 0 while a finished image's file is being written
        self._wakeup: int | None = None  # read end of the wake-up pipe while installed

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle SIGINT as described above while the block runs (main thread only).

        Python runs a signal handler once for every signal that arrived during one long C
        call (a big attention op), so two quick Ctrl-Cs looked like one.  The wake-up pipe
        (``signal.set_wakeup_fd``) gets a byte per signal at the C level: the handler counts
        them, and a second Ctrl-C stops at once however fast it came."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._wakeup = read_end
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.set_wakeup_fd(previous_fd)
            self._wakeup = None
            os.close(read_end)
            os.close(write_end)

    def _presses(self) -> int:
        """Ctrl-Cs delivered since the handler last ran (at least the one it runs for)."""
        if self._wakeup is None:
            return 1
        try:
            arrived = os.read(self._wakeup, 512)
        except BlockingIOError:
            return 1
        return max(1, arrived.count(bytes([signal.SIGINT])))

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        for _ in range(self._presses()):
            self._press()

    def _press(self) -> None:
        if not self.requested:
            self.requested = True
            self.say(STOPPING)
            return
        if self._writing:
            return  # the file being written is finished first; check() stops right after
        raise KeyboardInterrupt

    @contextmanager
    def asking(self) -> Iterator[None]:
        """A question before the run (nothing runs yet): Ctrl-C answers it with no, as at the
        prompt, instead of asking to stop after a step."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C asked to stop (called at step boundaries)."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A finished image is being written: even a second Ctrl-C waits for the file."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
