"""A LoadedModel built in memory from tests/tiny_models.py, and small init images, for core tests.

The model loader lives elsewhere; the core only needs a LoadedModel, so tests build one directly.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dreamline.core import GeneratedImage, Generator
from dreamline.init_input import PreparedInit, prepare_init
from dreamline.models.types import LoadedModel
from dreamline.request import Request
from tiny_models import SCHEDULER_CONFIG, tiny_components

SIZE = 64


def fresh_tiny_model() -> LoadedModel:
    """A tiny model of its own (for tests that change its networks in place)."""
    parts = tiny_components(seed=0)
    return LoadedModel(
        name="tiny", path=Path("tiny"), short_hash="0123456789",
        unet=parts["unet"], vae=parts["vae"], text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"], scheduler_config=dict(SCHEDULER_CONFIG),
        device=torch.device("cpu"), dtype=torch.float32,
        default_width=SIZE, default_height=SIZE)


@lru_cache(maxsize=1)
def tiny_model() -> LoadedModel:
    """One tiny model per test session (the weights are random but fixed by the seed)."""
    return fresh_tiny_model()


def gradient_image(kind: int, size: int = SIZE) -> Image.Image:
    """Clearly different deterministic RGB pictures: 0 warm gradient, 1 cool checkerboard."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    if kind == 0:
        rgb = np.stack([x, y * 0.5, 1 - x], axis=-1)
    else:
        checks = ((np.floor(x * 4) + np.floor(y * 4)) % 2).astype(np.float32)
        rgb = np.stack([checks * 0.2, 1 - checks, 0.5 + 0.5 * checks * y], axis=-1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8), mode="RGB")


def write_image(directory: Path, kind: int, size: int = SIZE) -> Path:
    path = directory / f"init-{kind}-{size}.png"
    gradient_image(kind, size).save(path)
    return path


def prepared(request: Request, report: Callable[[str], None] | None = None
             ) -> PreparedInit | None:
    """The request's init image prepared for the tiny model, as a caller does (None: txt2img)."""
    model = tiny_model()
    return prepare_init(request, default_size=(model.default_width, model.default_height),
                        multiple=model.size_multiple,
                        report=report if report is not None else (lambda _line: None))


def generate(gen: Generator, request: Request, **hooks: Any) -> list[GeneratedImage]:
    """``gen.generate`` as the REPL calls it: the init image prepared first (its notes go to the
    generator's report)."""
    return gen.generate(request, init=prepared(request, gen.report), **hooks)
