"""The session's models: registry, device, loading and switching, and their cache.

One ModelManager per session (the REPL owns it).  Nothing is loaded or chosen when it is made:
the registry is read on first use, the device is chosen (and said, once) at the first load.
Loaded models stay in the manager's own LRU cache, so ``!switch`` back and forth is free; a load
that failed is remembered, so asking for the same unchanged file again repeats its one-line
error at once instead of reading gigabytes again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError, ModelError
from dreamline.models.registry import DATA_DIR, DEFAULT_REGISTRY, ModelEntry, ModelRegistry
from dreamline.models.types import LoadedModel

Say = Callable[[str], None]
DEMO_MODEL = "demo"
# Two lines of at most 80 columns (the REPL's screen), said when the demo model is loaded.
DEMO_NOTE = (">> this is the small built-in demo model; for real pictures give --model PATH",
             ">> (an SD 1.x checkpoint) or an entry in configs/models.yaml (--config FILE)")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
BUILTIN_FALLBACK = "only the built-in demo model is available"


def default_models_file() -> Path:
    """configs/models.yaml in the working directory, else the one beside the project sources."""
    here = Path.cwd() / DEFAULT_REGISTRY
    if here.is_file():
        return here
    return PROJECT_ROOT / DEFAULT_REGISTRY


def models_file_for(config: Path | None) -> Path | None:
    """--config, else configs/models.yaml if there is one; None: only the demo model."""
    if config is not None:
        return config
    found = default_models_file()
    return found if found.is_file() else None


def demo_registry() -> ModelRegistry:
    """The registry used when there is no models file: just the built-in demo model, with the
    same settings as its configs/models.yaml entry (32x32 is what it was trained at; guidance 4
    measured best for it, see data/demo/MODEL_CARD.md)."""
    entry = ModelEntry(DEMO_MODEL, DATA_DIR / "demo", description="small built-in demo model",
                       width=32, height=32, cfg_scale=4.0, default=True)
    return ModelRegistry([entry])


def _entry_defaults(entry: ModelEntry) -> str:
    """' [-C 4 -A k_dpmpp_2m --schedule karras]': the line defaults an entry sets, or ''."""
    parts = [] if entry.cfg_scale is None else [f"-C {entry.cfg_scale:g}"]
    if entry.sampler is not None:
        parts.append(f"-A {entry.sampler}")
        if entry.schedule not in (None, "model"):
            parts.append(f"--schedule {entry.schedule}")
    return f" [{' '.join(parts)}]" if parts else ""


def _file_state(path: Path) -> tuple[int, int] | None:
    """(size, mtime) of what a source's weights are, None when it cannot be seen."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


class ModelManager:
    """Owns the models registry, the device and dtype, the current model and the cache."""

    def __init__(self, *, models_file: Path | None, device: str | None, precision: str,
                 wanted: str | None, say: Callable[[str], None], max_models: int = 2,
                 vae: Path | None = None, vae_tiling: bool = False) -> None:
        """``models_file`` None: the built-in demo registry; ``wanted`` None: its default.

        ``say`` gets one line per event (device chosen, loading, loaded).  Nothing is loaded,
        read or chosen yet.  ``vae``: a VAE file or folder used instead of every model's own
        (``--vae``; None: each model's entry, sidecar or own VAE).  ``vae_tiling``
        (``--vae_tiling``): every model encodes and decodes images larger than its VAE's tile
        in blended tiles (dreamline.core.memory.enable_vae_tiling).
        """
        from dreamline.models.cache import ModelCache

        self.models_file = models_file
        self.requested_device = device
        self.precision = precision
        self.wanted = wanted
        self.say = say
        self.vae = vae
        self.vae_tiling = vae_tiling
        self.cache = ModelCache(max_models)
        self._registry: ModelRegistry | None = None
        self._device: Any = None
        self._dtype: Any = None
        self._model: LoadedModel | None = None
        self._paths: list[str] = []  # models loaded by path this session, in order
        self._failures: dict[str, tuple[Any, ModelError]] = {}  # source -> (its state, error)
        self.problem: str | None = None  # why the models file is not in use (use_builtin_models)

    # ---- the registry ---------------------------------------------------------------------
    def registry(self) -> ModelRegistry:
        """The models registry (read once); ModelError if the models file is unusable."""
        if self._registry is None:
            self._registry = (ModelRegistry.load(self.models_file)
                              if self.models_file is not None else demo_registry())
        return self._registry

    def use_builtin_models(self, problem: str) -> None:
        """Go on with the built-in demo registry after the models file proved unusable
        (``registry()`` raised); ``problem`` is the one line saying so, which !models repeats."""
        self.problem = problem
        self.models_file = None
        self._registry = demo_registry()

    def _where(self) -> str:
        return f"its {self.models_file.name} entry" if self.models_file is not None \
            else "its built-in entry"

    def names(self) -> list[str]:
        """Registry names, then paths loaded this session; [] if the models file is unreadable."""
        try:
            names = list(self.registry().names)
        except DreamlineError:
            return []
        return names + [path for path in self._paths if path not in names]

    def describe(self) -> list[str]:
        """The !models lines: each entry with its default/loaded marks, then path-loaded ones.

        Raises ModelError (one line) when the models file cannot be read.
        """
        registry = self.registry()
        loaded = self._model.name if self._model is not None else None
        where = self.models_file if self.models_file is not None else "the built-in list"
        lines = [f"models in {where}:"]
        for name in registry.names:
            entry = registry.entry(name)
            marks = [mark for mark, on in (("default", name == registry.default_name),
                                           ("loaded", name == loaded)) if on]
            shown = f" ({', '.join(marks)})" if marks else ""
            lines.append(f"  {name}{shown}: {entry.description or entry.path}"
                         f"{_entry_defaults(entry)}")
        loaded_path = str(self._model.path) if self._model is not None else None
        for path in self._paths:
            if path in registry.names:
                continue
            shown = " (loaded)" if loaded_path == str(Path(path).expanduser().resolve()) else ""
            lines.append(f"  {path}{shown}: loaded by path this session")
        return lines

    def default_cfg(self) -> tuple[str, float, str] | None:
        """(entry name, its cfg_scale, "its models.yaml entry") for the wanted model, without
        loading it; None when its entry sets none, it is a path no entry names, or the models
        file cannot be read (loading will say why)."""
        try:
            entry = self.registry().find(self.wanted)
        except DreamlineError:
            return None
        if entry is None or entry.cfg_scale is None:
            return None
        return entry.name, entry.cfg_scale, self._where()

    def default_sampler(self) -> tuple[str, str, str, str] | None:
        """(entry name, its sampler, its schedule type, "its models.yaml entry") for the wanted
        model, without loading it; None as for ``default_cfg``."""
        try:
            entry = self.registry().find(self.wanted)
        except DreamlineError:
            return None
        if entry is None or entry.sampler is None:
            return None
        return entry.name, entry.sampler, entry.schedule or "model", self._where()

    def native_size(self) -> tuple[str, int, int] | None:
        """(entry name, width, height) the wanted model's entry declares it was made for,
        without loading it; None when the entry declares no size or cannot be read."""
        try:
            entry = self.registry().find(self.wanted)
        except DreamlineError:
            return None
        if entry is None or entry.width is None or entry.height is None:
            return None
        return entry.name, entry.width, entry.height

    def loaded_multiple(self) -> int | None:
        """Image sides must be multiples of this for the loaded model; None before one loads."""
        return self._model.size_multiple if self._model is not None else None

    # ---- labels ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """'demo [abc123def0]' once loaded, else 'demo (not loaded yet)'."""
        if self._model is not None:
            return f"{self._model.name} [{self._model.short_hash}]"
        if self.wanted is not None:
            return f"{self.wanted} (not loaded yet)"
        try:
            return f"{self.registry().default_name} (not loaded yet)"
        except DreamlineError:
            return "default (not loaded yet)"

    @property
    def device_label(self) -> str:
        """'cpu float32' once a device is chosen, else the --device asked for, or 'auto'."""
        if self._device is None:
            return self.requested_device or "auto"
        from dreamline.devices import dtype_name

        return f"{self._device} {dtype_name(self._dtype)}"

    # ---- loading --------------------------------------------------------------------------
    def _choose_device(self) -> None:
        if self._device is not None:
            return
        from dreamline.devices import choose_device, choose_dtype, describe

        device = choose_device(self.requested_device)
        dtype = choose_dtype(device, self.precision)
        self._device, self._dtype = device, dtype
        self.say(f">> {describe(device, dtype)}")

    def _source_state(self, name_or_path: str | None) -> tuple[str, Any]:
        """A failure-memory key for the source and the state of its weights on disk."""
        from dreamline.models.loader import resolve_source, weights_file

        source = resolve_source(name_or_path, self.registry())
        try:
            weights = weights_file(source.path)
        except ModelError:
            weights = source.path
        sibling = source.path.with_suffix(".yaml")
        return str(source.path), (_file_state(weights), _file_state(source.path),
                                  _file_state(sibling))

    def _load(self, name_or_path: str | None) -> LoadedModel:
        from dreamline.models.loader import load_model

        self._choose_device()
        key, state = self._source_state(name_or_path)
        failed = self._failures.get(key)
        if failed is not None and failed[0] == state:
            raise failed[1]
        try:
            model = load_model(name_or_path, registry=self.registry(), device=self._device,
                               dtype=self._dtype, report=lambda text: self.say(f">> {text}"),
                               cache=self.cache, vae=self.vae)
        except ModelError as error:
            self._failures[key] = (state, error)
            raise
        self._failures.pop(key, None)
        if self.vae_tiling:
            from dreamline.core.memory import use_vae_tiling

            use_vae_tiling(model)
        if name_or_path is not None and name_or_path not in self.registry() \
                and name_or_path not in self._paths and self.registry().find(name_or_path) is None:
            self._paths.append(name_or_path)
        if model.name == DEMO_MODEL and (self._model is None or self._model.name != DEMO_MODEL):
            for line in DEMO_NOTE:
                self.say(line)
        return model

    def current(self) -> LoadedModel:
        """The current model, loading the wanted one on first use (ModelError: one line)."""
        if self._model is None:
            self._model = self._load(self.wanted)
        return self._model

    def switch(self, name_or_path: str) -> LoadedModel:
        """Load ``name_or_path`` now and make it current; on failure the previous model stays
        current and the ModelError says why."""
        model = self._load(name_or_path)
        self._model = model
        self.wanted = name_or_path
        return model

    def release(self) -> None:
        """Drop every loaded model (and give CUDA memory back); the next use loads again."""
        self._model = None
        self.cache.clear()
