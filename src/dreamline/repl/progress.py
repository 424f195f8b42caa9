"""The per-image progress bar (tqdm): which image of ``-n N``, steps, elapsed, ETA and speed.

tqdm shows ``s/it`` by itself when a step takes longer than a second.  The bar is drawn only on
a terminal (or when ``enabled`` is given), so piped output and logs stay clean.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm

BAR_COLUMNS = 80


class Progress:
    """One bar per image, labelled ``image 2/4``; counts every step for the command's speed."""

    def __init__(self, stream: TextIO, images: int, *, enabled: bool | None = None) -> None:
        self.stream = stream
        self.images = images
        self.enabled = getattr(stream, "isatty", lambda: False)() if enabled is None else enabled
        self.steps = 0  # real sampling steps of the whole command
        self.image = 0  # the image being made, from 1
        self.started = time.perf_counter()
        self._bar: Any = None

    def start_image(self) -> None:
        """A new image begins (the generator's on_start)."""
        self.close()
        self.image += 1

    def step(self, done: int, total: int) -> None:
        """Step ``done`` of ``total`` of the current image finished."""
        self.steps += 1
        if not self.enabled:
            return
        if self._bar is None:
            if self.image == 0:
                self.image = 1
            self._bar = tqdm(total=total, desc=f"image {self.image}/{self.images}",
                             file=self.stream, ncols=BAR_COLUMNS, unit="it", leave=True,
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} steps "
                                        "[{elapsed}<{remaining}, {rate_fmt}]")
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """End the current image's bar (its line stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
