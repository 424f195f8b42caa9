"""A library's logger kept off the screen for a while (its ERROR records still show)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_library(name: str) -> Iterator[None]:
    """Warnings of the logger ``name`` ("diffusers", "transformers") dropped inside the block.

    diffusers' scheduler warnings are notes to library users about settings it changes by
    itself (DPM++ 2S a: "Changing scheduler {self.config} to have lower_order_final ...", the
    placeholder unfilled); dreamline sets what it means, and a user could do nothing about them.
    """
    library = logging.getLogger(name)
    level = library.level
    library.setLevel(logging.ERROR)
    try:
        yield
    finally:
        library.setLevel(level)
