"""One bar over the lines of a Ray run: done, failed, in flight, images per minute."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

from dreamline.repl.progress import BAR_COLUMNS


class LineBar:
    """The session's line hooks around the manifest's: counts every line as it ends; drawn
    only on a terminal (or when ``enabled``)."""

    def __init__(self, inner: Any, pool: Any, *, enabled: bool | None = None) -> None:
        self.inner = inner  # the session's hooks before (the manifest's)
        self.pool = pool
        stream = sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = 0
        self.failed = 0
        self.images = 0
        self.started = time.perf_counter()
        self._bar: Any = tqdm(desc="lines", unit="line", file=stream, ncols=BAR_COLUMNS,
                              leave=False) if self.enabled else None

    def would_skip(self, number: int, line: str) -> bool:
        return bool(getattr(self.inner, "would_skip", lambda n, t: False)(number, line))

    def before(self, number: int, line: str) -> bool:
        return bool(self.inner.before(number, line))

    def after(self, number: int, line: str, finished: Any, error: str | None) -> None:
        self.inner.after(number, line, finished, error)
        if error is not None:
            self.failed += 1
        elif finished is not None:
            self.done += 1
            self.images += len(finished.produced.images)
        if self._bar is not None:
            minutes = (time.perf_counter() - self.started) / 60
            rate = self.images / minutes if minutes > 0 else 0.0
            self._bar.update(1)
            self._bar.set_postfix_str(f"done {self.done} failed {self.failed} in flight "
                                      f"{self.pool.in_flight()} {rate:.1f} img/min")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
