"""A small LRU of loaded models; each ModelManager (or caller) owns its own."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from dreamline.models.types import LoadedModel


class ModelCache:
    """Loaded models by (weights file, its size and mtime, config, device, dtype), newest last.

    Holds at most ``max_models`` so switching between two models is free while a long session
    does not pile up gigabytes of networks; the least recently used one is dropped first.
    """

    def __init__(self, max_models: int = 2) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._models: OrderedDict[tuple[Any, ...], LoadedModel] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> LoadedModel | None:
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
        return model

    def put(self, key: tuple[Any, ...], model: LoadedModel) -> None:
        self._models[key] = model
        self._models.move_to_end(key)
        dropped_cuda = False
        while len(self._models) > self.max_models:
            _, dropped = self._models.popitem(last=False)
            dropped_cuda = dropped_cuda or dropped.device.type == "cuda"
        if dropped_cuda:
            torch.cuda.empty_cache()  # give the freed GPU memory back for the next model

    def clear(self) -> None:
        """Drop every model (and give CUDA memory back)."""
        had_cuda = any(model.device.type == "cuda" for model in self._models.values())
        self._models.clear()
        if had_cuda:
            torch.cuda.empty_cache()

    def __len__(self) -> int:
        return len(self._models)
