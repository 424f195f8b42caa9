"""Libraries' loggers kept off the screen for a while (stdlib only; usable from every layer)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_library(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Records below ``level`` of the loggers ``names`` ("diffusers", "transformers", "peft")
    dropped inside the block; their levels are restored after it, even on an error.

    What they say there is advice to library users that a dreamline user can do nothing about:
    diffusers' scheduler notes ("Changing scheduler {self.config} ...", its placeholder
    unfilled), transformers' "requires torchvision" on importing compel, its over-length
    tokenizer warning, or (``level`` above CRITICAL) the shape dump logged before a failed
    LoRA load is raised and said by dreamline in one line.
    """
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, saved, strict=True):
            logger.setLevel(previous)
