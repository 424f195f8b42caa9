"""The models registry: ``configs/models.yaml`` names the models a user can ``!switch`` to.

Each entry has a name, a path (a diffusers folder or a CompVis .safetensors/.ckpt file),
a description, the default image size, an optional default guidance scale (``cfg_scale``: a
small or unusual model may work best away from SD's 7.5), an optional ``config`` folder
(diffusers-style part configs, for single files whose architecture is not SD 1.5), and one entry
is ``default: true``.  ``prediction_type`` (``epsilon`` or ``v_prediction``) marks an SD 1.x
v-prediction fine-tune whose file does not say so itself.  ``sampler`` names the model's default
-A in any dialect (ours ``k_dpmpp_2m``, A1111's ``DPM++ 2M Karras``, ComfyUI's ``dpmpp_2m``), with
an optional ``schedule`` (ours: model/uniform/karras/exponential) or ComfyUI-style ``scheduler``
(normal/karras/exponential) key for its schedule type.
Relative paths are relative to the yaml file's folder, so a registry can travel with its models;
``@builtin/...`` means the package's own data folder (the built-in demo model and SD 1.5 configs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamline import samplers
from dreamline.errors import ModelError
from dreamline.models.hashing import CACHE_FILE_NAME
from dreamline.models.registry_yaml import EntryLines, read_models_yaml
from dreamline.request import CFG_SCALE_RANGE, MAX_SIDE

BUILTIN_PREFIX = "@builtin/"
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_REGISTRY = Path("configs") / "models.yaml"
_KNOWN_FIELDS = frozenset({"path", "description", "width", "height", "cfg_scale", "config",
                           "default", "prediction_type", "vae", "sampler", "schedule",
                           "scheduler"})
PREDICTION_TYPES: dict[str, str] = {"epsilon": "epsilon", "v_prediction": "v_prediction",
                                    "v": "v_prediction"}


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry, its paths already resolved to absolute ones."""

    name: str
    path: Path
    description: str = ""
    width: int | None = None
    height: int | None = None
    cfg_scale: float | None = None  # default -C for this model; None: the usual 7.5
    config: Path | None = None  # diffusers-style config folder for single files
    default: bool = False
    prediction_type: str | None = None  # "epsilon" / "v_prediction"; None: detect from the file
    vae: Path | None = None  # a VAE file or diffusers vae/ folder used instead of the model's own
    sampler: str | None = None  # default -A for this model (our name); None: the usual k_lms
    schedule: str | None = None  # its schedule type ("model"/"karras"/"exponential") with sampler


def user_cache_dir() -> Path:
    """Per-user caches: ``$XDG_CACHE_HOME/dreamline``, default ``~/.cache/dreamline``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "dreamline"


def _prediction_type(source: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in PREDICTION_TYPES:
        raise ModelError(f"{source}: model {name!r}: prediction_type is {value!r}; expected "
                         f"epsilon or v_prediction")
    return PREDICTION_TYPES[key]


def resolve_path(text: str, base_dir: Path) -> Path:
    """``@builtin/x`` -> the package's data/x; relative -> under ``base_dir``; ``~`` expanded."""
    if text.startswith(BUILTIN_PREFIX):
        return DATA_DIR / text[len(BUILTIN_PREFIX):]
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return path.resolve()


def _size(source: str, name: str, field_name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= MAX_SIDE:
        raise ModelError(f"{source}: model {name!r}: {field_name} is {value!r}; expected a size "
                         f"in pixels from 8 to {MAX_SIDE}")
    return value


def _cfg_scale(source: str, name: str, value: Any) -> float | None:
    """Checked like -C on a prompt line, so an entry cannot set a default no line could."""
    if value is None:
        return None
    low, high = CFG_SCALE_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ModelError(f"{source}: model {name!r}: cfg_scale is {value!r}; expected a number "
                         f"in [{low:g}, {high:g}]")
    return float(value)


# The words a models.yaml schedule/scheduler key takes: ours (--schedule) and ComfyUI's.
_SCHEDULE_KEYS: dict[str, str] = {**samplers.SCHEDULE_WORDS, **samplers.COMFY_SCHEDULES}


def _schedule_key(source: str, name: str, raw: dict[Any, Any]) -> tuple[str, str] | None:
    """(key, our schedule) from the entry's ``schedule`` or ``scheduler`` key; None: neither."""
    keys = [key for key in ("schedule", "scheduler") if raw.get(key) is not None]
    if len(keys) > 1:
        raise ModelError(f"{source}: model {name!r} has both schedule and scheduler; expected "
                         f"one of them")
    if not keys:
        return None
    value = raw[keys[0]]
    found = _SCHEDULE_KEYS.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ModelError(f"{source}: model {name!r}: {keys[0]} is {value!r}; expected one of "
                         f"{', '.join(_SCHEDULE_KEYS)}")
    return keys[0], found


def _sampler(source: str, name: str, raw: dict[Any, Any]) -> tuple[str | None, str | None]:
    """(our sampler, our schedule) for the entry's ``sampler`` (any dialect) and schedule keys;
    checked like -A/--schedule on a line, so an entry cannot set a default no line could."""
    value = raw.get("sampler")
    schedule = _schedule_key(source, name, raw)
    if value is None:
        if schedule is not None:
            raise ModelError(f"{source}: model {name!r}: {schedule[0]} is given without a "
                             f"sampler; expected a sampler key with it")
        return None, None
    found = samplers.resolve(value) if isinstance(value, str) else None
    if found is None:
        raise ModelError(f"{source}: model {name!r}: sampler is {value!r}; expected one of "
                         f"{', '.join(samplers.NAMES)}, or an A1111 or ComfyUI name (\"DPM++ "
                         f"2M Karras\", dpmpp_2m)")
    sampler, named = found
    if schedule is not None and named is not None and schedule[1] != named:
        raise ModelError(f"{source}: model {name!r}: sampler {value!r} and {schedule[0]} "
                         f"{raw[schedule[0]]!r} disagree; expected one schedule type")
    chosen = named if named is not None else schedule[1] if schedule is not None else "model"
    if chosen not in samplers.spec(sampler).schedules:
        raise ModelError(f"{source}: model {name!r}: the {chosen} schedule is not for sampler "
                         f"{sampler!r}; expected the model schedule, or a sampler among "
                         f"{', '.join(samplers.SCHEDULED_NAMES)}")
    return sampler, chosen


def _text(source: str, name: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"{source}: model {name!r}: {field_name} is {value!r}; expected a "
                         f"non-empty path")
    return value.strip()


def _entry(path: Path, name: Any, raw: Any, lines: EntryLines | None) -> ModelEntry:
    """One entry checked; each ModelError names the file and the line of the key at fault."""

    def at(key: str | None = None) -> str:
        return f"{path} line {lines.of(key)}" if lines is not None else str(path)

    base_dir = path.parent
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ModelError(f"{at()}: {name!r} is not a usable model name; expected one word")
    if not isinstance(raw, dict):
        raise ModelError(f"{at()}: model {name!r} is {raw!r}; expected a mapping with path, "
                         f"description, width, height")
    unknown = sorted(str(key) for key in raw if key not in _KNOWN_FIELDS)
    if unknown:
        raise ModelError(f"{at(unknown[0])}: model {name!r} has unknown field(s) "
                         f"{', '.join(unknown)}; expected {', '.join(sorted(_KNOWN_FIELDS))}")
    if "path" not in raw:
        raise ModelError(f"{at()}: model {name!r} has no path; expected a path key (a "
                         f"diffusers folder, .safetensors or .ckpt file)")
    default = raw.get("default", False)
    if not isinstance(default, bool):
        raise ModelError(f"{at('default')}: model {name!r}: default is {default!r}; expected "
                         f"true or false")
    description = raw.get("description", "")
    config = raw.get("config")
    scheduled = "scheduler" if raw.get("schedule") is None else "schedule"
    sampler, schedule = _sampler(at("sampler" if "sampler" in raw else scheduled), name, raw)
    return ModelEntry(
        name=name,
        path=resolve_path(_text(at("path"), name, "path", raw["path"]), base_dir),
        description="" if description is None else str(description),
        width=_size(at("width"), name, "width", raw.get("width")),
        height=_size(at("height"), name, "height", raw.get("height")),
        cfg_scale=_cfg_scale(at("cfg_scale"), name, raw.get("cfg_scale")),
        config=None if config is None else resolve_path(_text(at("config"), name, "config",
                                                              config), base_dir),
        default=default,
        prediction_type=_prediction_type(at("prediction_type"), name,
                                         raw.get("prediction_type")),
        vae=None if raw.get("vae") is None else resolve_path(_text(at("vae"), name, "vae",
                                                                   raw["vae"]), base_dir),
        sampler=sampler,
        schedule=schedule,
    )


class ModelRegistry:
    """The named models of one models.yaml, in file order."""

    def __init__(self, entries: list[ModelEntry], path: Path | None = None) -> None:
        if not entries:
            where = f"{path}: " if path is not None else ""
            raise ModelError(f"{where}no models are listed; expected at least one entry")
        self.path = path
        self._entries = {entry.name: entry for entry in entries}
        defaults = [entry.name for entry in entries if entry.default]
        if len(defaults) > 1:
            raise ModelError(f"{path}: several models are marked default ({', '.join(defaults)})"
                             f"; expected exactly one")
        self.default_name = defaults[0] if defaults else entries[0].name

    @classmethod
    def load(cls, path: Path | str = DEFAULT_REGISTRY) -> ModelRegistry:
        """Read and check a models.yaml; every problem is a one-line ModelError."""
        path = Path(path).expanduser().resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelError(f"models file {path} does not exist; expected a models.yaml "
                             f"(see configs/models.yaml)") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ModelError(f"models file {path} cannot be read: {error}") from None
        read = read_models_yaml(path, text)  # invalid YAML, a key said twice: ModelError
        if not isinstance(read.data, dict):
            raise ModelError(f"models file {path}: expected a mapping of model names to entries")
        entries = [_entry(path, name, raw, read.lines.get(str(name)))
                   for name, raw in read.data.items()]
        return cls(entries, path)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    @property
    def hash_cache_path(self) -> Path:
        """Where short hashes are remembered: the user's cache folder (never the installation,
        which may be read-only or shared), whichever registry is in use."""
        return user_cache_dir() / CACHE_FILE_NAME

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def find(self, name_or_path: str | None) -> ModelEntry | None:
        """The entry a --model / !switch argument means, without loading or raising: a name,
        None for the default, or a path that an entry names (as the loader matches it)."""
        if name_or_path is None:
            return self._entries[self.default_name]
        if name_or_path in self._entries:
            return self._entries[name_or_path]
        try:
            resolved = Path(name_or_path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        for entry in self._entries.values():
            if entry.path == resolved:
                return entry
        return None

    def entry(self, name: str | None = None) -> ModelEntry:
        """The named entry (the default one for None); ModelError listing the known names."""
        if name is None:
            name = self.default_name
        try:
            return self._entries[name]
        except KeyError:
            raise ModelError(f"unknown model {name!r}; known models: {', '.join(self.names)} "
                             f"(or give a path to a diffusers folder, .safetensors or .ckpt "
                             f"file)") from None
