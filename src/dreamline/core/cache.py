"""Small bounded caches for work a warm REPL would otherwise repeat: text encodings and the init
image's VAE encoder output.  They keep pixels identical: an entry is the very tensor a fresh
computation would give, and a key names everything the computation depends on, so a changed
prompt, negative, LoRA set, model, VAE, size or init picture never finds a stale entry.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from PIL import Image

from dreamline.core.latents import LatentDistribution, encode

Value = TypeVar("Value")

TEXT_ENTRIES = 16  # distinct (text, text-encoder weights) encodings kept per model
INIT_ENTRIES = 8  # distinct init pictures' encoder outputs kept per model


class LRU(Generic[Value]):
    """At most ``size`` entries; the least recently used one goes first.  Not thread-safe.

    ``hits`` and ``misses`` count lookups, so tests and benchmarks can see reuse.
    Raises ValueError for a size below 1.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size {size} is too small; expected at least 1")
        self.size = size
        self._entries: OrderedDict[Hashable, Value] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_make(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The entry for ``key``, made by ``make()`` (and kept) when absent.  Whatever ``make``
        raises passes through and nothing is kept."""
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]
        self.misses += 1
        value = make()
        self._entries[key] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        self._entries.clear()


def picture_key(image: Image.Image) -> tuple[str, str, tuple[int, int]]:
    """(mode, sha256 of the pixel bytes, (width, height)): equal only for identical pictures,
    whatever file, fit or EXIF turn produced them.  Costs one pass over the pixels."""
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    return image.mode, digest, image.size


class InitCache(LRU[tuple[Any, LatentDistribution]]):
    """Init pictures' VAE encoder Gaussians, per (picture, VAE object, its dtype and device).

    Each entry holds its VAE, so the VAE's id in the key cannot pass to another object while
    the entry lives."""

    def distribution(self, vae: Any, picture: Image.Image) -> LatentDistribution:
        """The encoder's Gaussian for ``picture`` (dreamline.core.latents.encode), kept; the
        sample is drawn per image by the caller, from that image's generator."""
        param = next(vae.parameters())
        key = (picture_key(picture), id(vae), param.dtype, str(param.device))
        return self.get_or_make(key, lambda: (vae, encode(vae, picture)))[1]
