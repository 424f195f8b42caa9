"""The session's model manager in a --ray run: the registry here, the models on the workers."""

from __future__ import annotations

from typing import Any

from dreamline.batch.pool import WorkerPool
from dreamline.batch.worker import ModelInfo


class RayModels:
    """The session's ModelManager on the driver: names and defaults from the registry, models
    loaded on the workers only."""

    def __init__(self, inner: Any, pool: WorkerPool) -> None:
        self.inner = inner  # the models.manager.ModelManager (its registry; never loads here)
        self.pool = pool

    @property
    def label(self) -> str:
        info = self.pool.infos.get(self.inner.wanted)
        shown = info.label if info is not None else self.inner.label
        return f"{shown} on {len(self.pool.slots)} Ray worker(s)"

    @property
    def device_label(self) -> str:
        return "ray"

    @property
    def wanted(self) -> str | None:
        return self.inner.wanted

    def names(self) -> list[str]:
        return list(self.inner.names())

    def describe(self) -> list[str]:
        return list(self.inner.describe())

    @property
    def problem(self) -> str | None:
        return self.inner.problem

    def default_cfg(self) -> tuple[str, float, str] | None:
        return self.inner.default_cfg()

    def default_sampler(self) -> tuple[str, str, str, str] | None:
        return self.inner.default_sampler()

    def native_size(self) -> tuple[str, int, int] | None:
        return self.inner.native_size()

    def loaded_multiple(self) -> int | None:
        return None  # the driver loads no model; -h then names no number

    def current(self) -> ModelInfo:
        return self.pool.model_info(self.inner.wanted)

    def switch(self, name_or_path: str) -> ModelInfo:
        info = self.pool.model_info(name_or_path)  # ModelError: the previous model stays
        self.inner.wanted = name_or_path
        return info

    def release(self) -> None:
        return None
