"""INTERIM -- delete at merge.  A ModelManager (repl/context.py) built from today's registry and
loader code, so the REPL runs until the models room's models/manager.py is wired in.

It keeps the agreed behaviour: nothing is loaded until ``current()``; a failed load raises
ModelError and is remembered (asking again re-raises at once unless the file changed); the
model cache is this object's own ``ModelCache``, not a module global.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError, ModelError
from dreamline.models.registry import DEFAULT_REGISTRY

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = "demo"
DEMO_NOTE = (">> this is the small built-in demo model; for real pictures give --model PATH",
             ">> (an SD 1.x checkpoint) or an entry in configs/models.yaml (--config FILE)")


def default_models_file() -> Path:
    """configs/models.yaml in the working directory, else the one beside the project sources."""
    here = Path.cwd() / DEFAULT_REGISTRY
    if here.is_file():
        return here
    return PROJECT_ROOT / DEFAULT_REGISTRY


def demo_registry() -> Any:
    """The registry used when there is no models file: just the built-in demo model, with the
    same settings as its configs/models.yaml entry (32x32 is what it was trained at)."""
    from dreamline.models.registry import DATA_DIR, ModelEntry, ModelRegistry

    # cfg_scale 4, as in configs/models.yaml: measured on this model (data/demo/MODEL_CARD.md).
    entry = ModelEntry(DEMO_MODEL, DATA_DIR / "demo", description="small built-in demo model",
                       width=32, height=32, cfg_scale=4.0, default=True)
    return ModelRegistry([entry])


def models_file_for(config: Path | None) -> Path | None:
    """--config, else configs/models.yaml if there is one; None: only the demo model."""
    if config is not None:
        return config
    found = default_models_file()
    return found if found.is_file() else None


class InterimModelManager:
    """The agreed ModelManager interface over models/registry.py and models/loader.py."""

    def __init__(self, *, models_file: Path | None, device: str | None, precision: str,
                 wanted: str | None, say: Callable[[str], None]) -> None:
        from dreamline.models.loader import ModelCache

        self.models_file = models_file
        self.requested_device = device
        self.precision = precision
        self.wanted = wanted  # None: the registry's default
        self.say = say
        self.cache = ModelCache()
        self._registry: Any = None
        self._model: Any = None
        self._device: Any = None
        self._dtype: Any = None
        self._failed: dict[tuple[Any, ...], ModelError] = {}
        self._paths: list[str] = []  # models loaded by path this session

    @property
    def label(self) -> str:
        if self._model is not None:
            return f"{self._model.name} [{self._model.short_hash}]"
        return f"{self.wanted or 'default'} (not loaded yet)"

    @property
    def device_label(self) -> str:
        if self._device is None:
            return self.requested_device or "auto"
        from dreamline.devices import dtype_name

        return f"{self._device} {dtype_name(self._dtype)}"

    def registry(self) -> Any:
        if self._registry is None:
            from dreamline.models.registry import ModelRegistry

            path = self.models_file
            self._registry = ModelRegistry.load(path) if path is not None else demo_registry()
        return self._registry

    def names(self) -> list[str]:
        try:
            names = list(self.registry().names)
        except DreamlineError:
            return []
        return names + [path for path in self._paths if path not in names]

    def describe(self) -> list[str]:
        registry = self.registry()
        loaded = self._model.name if self._model is not None else None
        where = self.models_file if self.models_file is not None else "the built-in list"
        lines = [f"models in {where}:"]
        for name in registry.names:
            entry = registry.entry(name)
            marks = [mark for mark, on in (("default", name == registry.default_name),
                                           ("loaded", name == loaded)) if on]
            shown = f" ({', '.join(marks)})" if marks else ""
            lines.append(f"  {name}{shown}: {entry.description or entry.path}")
        for path in self._paths:
            lines.append(f"  {path}{' (loaded)' if path == self.wanted else ''}: loaded by path")
        return lines

    def default_cfg(self) -> tuple[str, float, str] | None:
        try:
            registry = self.registry()
        except DreamlineError:
            return None
        entry = registry.find(self.wanted)
        if entry is None or entry.cfg_scale is None:
            return None
        where = f"its {registry.path.name} entry" if registry.path is not None \
            else "its built-in entry"
        return entry.name, entry.cfg_scale, where

    def current(self) -> Any:
        if self._model is None:
            self._model = self._load(self.wanted)
        return self._model

    def switch(self, name_or_path: str) -> Any:
        model = self._load(name_or_path)
        self._model, self.wanted = model, name_or_path
        entry = self.registry().find(name_or_path)
        if entry is None and name_or_path not in self._paths:
            self._paths.append(name_or_path)
        return model

    def release(self) -> None:
        self._model = None
        self.cache.clear()
        if getattr(self._device, "type", "") == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _failure_key(self, name: str | None) -> tuple[Any, ...]:
        try:
            entry = self.registry().find(name)
        except DreamlineError:
            entry = None
        path = entry.path if entry is not None else Path(name or "")
        try:
            stat = path.stat()
            return (name, str(path), stat.st_size, stat.st_mtime_ns)
        except OSError:
            return (name, str(path), None, None)

    def _load(self, name: str | None) -> Any:
        key = self._failure_key(name)
        if key in self._failed:
            raise self._failed[key]
        try:
            model = self._load_now(name)
        except ModelError as exc:
            self._failed[key] = exc
            raise
        if model.name == DEMO_MODEL:
            for line in DEMO_NOTE:
                self.say(line)
        return model

    def _load_now(self, name: str | None) -> Any:
        from dreamline.models.loader import load_model

        if self._device is None:
            from dreamline.devices import choose_device, choose_dtype, describe

            self._device = choose_device(self.requested_device)
            self._dtype = choose_dtype(self._device, self.precision)
            self.say(f">> {describe(self._device, self._dtype)}")
        return load_model(name, registry=self.registry(), device=self._device, dtype=self._dtype,
                          report=lambda text: self.say(f">> {text}"), cache=self.cache)
