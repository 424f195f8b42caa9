"""Offline loading of SD 1.x models: diffusers folders and CompVis single files.

Nothing here ever talks to a model hub: the hub libraries are put in offline mode before they
are imported, every load names a local folder, and single files are converted with our own key
table (models.convert) into networks built from a local config folder (the shipped SD 1.5
configs, or a registry entry's ``config``).  A ``.ckpt`` is only read with
``torch.load(weights_only=True)``; one whose pickle needs more is refused, never executed.

Loaded models stay in memory (a small cache keyed by file, device and dtype), so ``!switch``
back and forth costs nothing after the first load.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

os.environ["HF_HUB_OFFLINE"] = "1"  # before diffusers/transformers read their settings
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402
from safetensors import SafetensorError, safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from dreamline.devices import describe  # noqa: E402
from dreamline.errors import ModelError  # noqa: E402
from dreamline.models.convert import (  # noqa: E402
    ConversionError, compvis_to_diffusers, sd1_problem,
)
from dreamline.models.hashing import HashCache  # noqa: E402
from dreamline.models.registry import DATA_DIR, ModelEntry, ModelRegistry  # noqa: E402
from dreamline.models.types import LoadedModel  # noqa: E402

SD15_CONFIG_DIR = DATA_DIR / "sd15"
TOKENIZER_DIR = DATA_DIR / "tokenizer"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth")
FOLDER_PARTS = ("unet", "vae", "text_encoder")
EXPECTED = ("expected a diffusers folder (with model_index.json) or an SD 1.x .safetensors/.ckpt "
            "file")
# Failures third-party loaders raise for bad or mismatched files (never programming errors
# such as TypeError, which should surface as bugs).
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, EOFError, SafetensorError,
                pickle.UnpicklingError)

Report = Callable[[str], None]


@dataclass(frozen=True)
class ModelSource:
    """What to load: the resolved weights path, its display name, configs and default size."""

    name: str
    path: Path
    config_dir: Path | None = None  # for single files; None = the shipped SD 1.5 configs
    width: int | None = None
    height: int | None = None

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def _from_entry(entry: ModelEntry) -> ModelSource:
    return ModelSource(entry.name, entry.path, entry.config, entry.width, entry.height)


def resolve_source(name_or_path: str | Path | None, registry: ModelRegistry) -> ModelSource:
    """A registry name (None = the default), or a path to a folder or file, as a ModelSource."""
    if name_or_path is None:
        return _from_entry(registry.entry())
    text = str(name_or_path)
    if text in registry:
        return _from_entry(registry.entry(text))
    path = Path(text).expanduser()
    looks_like_path = (isinstance(name_or_path, Path) or "/" in text or os.sep in text
                       or path.suffix.lower() in SINGLE_FILE_SUFFIXES)
    if not path.exists():
        if looks_like_path:
            raise ModelError(f"model {text!r}: {path.resolve()} does not exist; {EXPECTED}")
        registry.entry(text)  # raises: unknown model, listing the known names
    resolved = path.resolve()
    for name in registry.names:  # a path that an entry names gets that entry's settings
        if registry.entry(name).path == resolved:
            return _from_entry(registry.entry(name))
    return ModelSource(resolved.stem if resolved.is_file() else resolved.name, resolved)


# ---------------------------------------------------------------------------------------------
# Which file identifies the weights (for the hash and the cache)


def _unet_weights_file(folder: Path) -> Path:
    unet = folder / "unet"
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                 "diffusion_pytorch_model.safetensors.index.json",
                 "diffusion_pytorch_model.fp16.safetensors.index.json",
                 "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"):
        if (unet / name).is_file():
            return unet / name
    raise ModelError(f"{folder}: no UNet weights in {unet} (expected "
                     f"diffusion_pytorch_model.safetensors or .bin)")


def weights_file(path: Path) -> Path:
    """The file whose sha256 is the model's hash: the file itself, or a folder's UNet weights.

    For a diffusers folder the UNet is by far the largest part and the one fine-tunes change,
    so its weights file stands for the model (for sharded weights: the shard index).
    """
    return _unet_weights_file(path) if path.is_dir() else path


# ---------------------------------------------------------------------------------------------
# Checks before loading


def _sniff(path: Path) -> str | None:
    """What a file really is, from its first bytes, when that explains a load failure."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF8", b"RIFF")):
        return "an image"
    if head.lstrip().startswith((b"<", b"{", b"version", b"#")):
        return "a text file"
    return None


def _check_path(source: ModelSource) -> None:
    path = source.path
    label = f"model {source.name!r}: {path}"
    if not path.exists():
        raise ModelError(f"{label} does not exist; {EXPECTED}")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"{label} is a folder without model_index.json; {EXPECTED}")
        return
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise ModelError(f"{label} is not a model file; {EXPECTED}")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist; expected the {what}") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{path} is not a readable {what}: {_first_line(error)}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a {what}: expected a JSON object")
    return data


def _check_sd1_networks(unet_config: Mapping[str, Any], text_hidden: int, where: str) -> None:
    """Refuse networks the generator cannot drive like SD 1.x (inpainting, SD 2, SDXL)."""
    in_channels = unet_config.get("in_channels")
    if in_channels != 4:
        kind = " (an inpainting model)" if in_channels == 9 else ""
        raise ModelError(f"{where}: the UNet takes {in_channels} input channels{kind}; expected "
                         f"4 (an SD 1.x image model)")
    cross = unet_config.get("cross_attention_dim")
    if cross != text_hidden:
        raise ModelError(f"{where}: the UNet's cross_attention_dim is {cross} but the text "
                         f"encoder's width is {text_hidden}; expected them to match (SD 1.x: 768)")


# ---------------------------------------------------------------------------------------------
# Reading single files


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except (SafetensorError, OSError) as error:
        what = _sniff(path)
        found = f"it is {what}" if what else f"it cannot be read ({_first_line(error)})"
        raise ModelError(f"{path} is not a safetensors file: {found}") from None
    _check_sd1_keys(path, keys)  # before reading gigabytes
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise ModelError(f"{path}: the safetensors file is damaged: {_first_line(error)}") from None


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    is_zip = zipfile.is_zipfile(path)
    what = None if is_zip else _sniff(path)
    if what is not None:
        raise ModelError(f"{path} is not a PyTorch checkpoint: it is {what}")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        text = str(error)
        if "Unsupported global" in text or "Unsupported operand" in text:
            raise ModelError(
                f"{path} needs unsafe unpickling (it stores Python objects besides weights), "
                f"so it was not loaded: a .ckpt can run code when opened; convert it to "
                f".safetensors with a tool you trust, or use a .safetensors copy") from None
        raise ModelError(f"{path} is not a readable PyTorch checkpoint: "
                         f"{_first_line(error)}") from None
    except (EOFError, OSError, RuntimeError, ValueError) as error:
        raise ModelError(f"{path} is not a readable PyTorch checkpoint: "
                         f"{_first_line(error)}") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"{path} holds a {type(data).__name__}, not a state dict; expected an "
                         f"SD 1.x checkpoint")
    tensors = {key: value for key, value in data.items()
               if isinstance(key, str) and isinstance(value, torch.Tensor)}
    _check_sd1_keys(path, list(tensors))
    return tensors


def _check_sd1_keys(path: Path, keys: list[str]) -> None:
    problem = sd1_problem(keys)
    if problem is not None:
        raise ModelError(f"{path} is not an SD 1.x model: {problem}")


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A CompVis single file's tensors (CPU), after checking that it is an SD 1.x model."""
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path)
    return _read_pickle(path)


# ---------------------------------------------------------------------------------------------
# Building networks from a config and a state dict


def _fill(model: torch.nn.Module, state: dict[str, torch.Tensor], part: str, where: str,
          config_dir: Path) -> None:
    """Load ``state`` into a model built on the meta device; every mismatch is one line."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        detail = (f"{len(missing)} tensors missing, e.g. {missing[0]!r}" if missing
                  else f"{len(unexpected)} unexpected tensors, e.g. {unexpected[0]!r}")
        raise ModelError(f"{where}: the {part} does not match the config in {config_dir} "
                         f"({detail}); expected an SD 1.x model of that architecture (a "
                         f"models.yaml entry can name another config folder)")
    for key, tensor in state.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise ModelError(f"{where}: the {part} tensor {key} has shape {list(tensor.shape)} "
                             f"but the config in {config_dir} expects {list(want)}; the file's "
                             f"architecture differs from that config")
    model.load_state_dict(state, strict=True, assign=True)
    _materialize_buffers(model, where)


def _materialize_buffers(model: torch.nn.Module, where: str) -> None:
    """Recreate non-persistent buffers (CLIP's position_ids) left on the meta device."""
    for name, buffer in list(model.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        if leaf == "position_ids":
            positions = torch.arange(buffer.shape[-1]).expand(tuple(buffer.shape)).clone()
            owner.register_buffer(leaf, positions, persistent=False)
        else:
            raise ModelError(f"{where}: cannot initialise the buffer {name}; this transformers "
                             f"or diffusers version builds the model differently")


def _config_dir_for(source: ModelSource) -> Path:
    config_dir = SD15_CONFIG_DIR if source.config_dir is None else source.config_dir
    for part, file_name in (("unet", "config.json"), ("vae", "config.json"),
                            ("text_encoder", "config.json")):
        if not (config_dir / part / file_name).is_file():
            raise ModelError(f"model {source.name!r}: config folder {config_dir} has no "
                             f"{part}/{file_name}; expected a diffusers-style config folder")
    return config_dir


def _tokenizer_dir(folder: Path) -> Path:
    own = folder / "tokenizer"
    return own if (own / "vocab.json").is_file() else TOKENIZER_DIR


def _load_tokenizer(folder: Path, where: str) -> Any:
    directory = _tokenizer_dir(folder)
    try:
        return CLIPTokenizer.from_pretrained(str(directory), local_files_only=True)
    except _LOAD_ERRORS as error:
        raise ModelError(f"{where}: cannot load the tokenizer from {directory}: "
                         f"{_first_line(error)}") from None


def _scheduler_config(folder: Path) -> dict[str, Any]:
    own = folder / "scheduler" / "scheduler_config.json"
    chosen = own if own.is_file() else SD15_CONFIG_DIR / "scheduler" / "scheduler_config.json"
    return _read_json(chosen, "scheduler config")


@dataclass
class _Networks:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict[str, Any]


def _load_single_file(source: ModelSource, report: Report) -> _Networks:
    where = str(source.path)
    config_dir = _config_dir_for(source)
    unet_config = _read_json(config_dir / "unet" / "config.json", "UNet config")
    vae_config = _read_json(config_dir / "vae" / "config.json", "VAE config")
    try:
        text_config = CLIPTextConfig.from_pretrained(str(config_dir / "text_encoder"),
                                                     local_files_only=True)
    except _LOAD_ERRORS as error:
        raise ModelError(f"{config_dir / 'text_encoder'}: not a CLIP text encoder config: "
                         f"{_first_line(error)}") from None
    _check_sd1_networks(unet_config, text_config.hidden_size, str(config_dir))

    checkpoint = read_checkpoint(source.path)
    try:
        parts = compvis_to_diffusers(checkpoint, unet_config, vae_config)
    except ConversionError as error:
        raise ModelError(f"{where}: {error}; expected weights matching {config_dir}") from None
    del checkpoint

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        text_encoder = CLIPTextModel(text_config)
    _fill(unet, parts.unet, "UNet", where, config_dir)
    _fill(vae, parts.vae, "VAE", where, config_dir)
    text_state = parts.text_encoder
    if any(key.startswith("text_model.") for key in text_encoder.state_dict()):
        text_state = {f"text_model.{key}": value for key, value in text_state.items()}
    _fill(text_encoder, text_state, "text encoder", where, config_dir)
    if parts.ignored:
        report(f"  ignored {len(parts.ignored)} tensors that belong to no network "
               f"(EMA copies, training schedules)")
    return _Networks(unet, vae, text_encoder, _load_tokenizer(config_dir, where),
                     _scheduler_config(config_dir))


def _variant(folder: Path, part: str, stem: str) -> str | None:
    """'fp16' when a folder part has only fp16-variant weights (a common download form)."""
    directory = folder / part
    plain = [directory / f"{stem}.safetensors", directory / f"{stem}.bin",
             directory / f"{stem}.safetensors.index.json"]
    if any(path.is_file() for path in plain):
        return None
    if any(directory.glob(f"{stem}.fp16.*")):
        return "fp16"
    return None


def _load_folder(source: ModelSource, dtype: torch.dtype) -> _Networks:
    folder = source.path
    where = str(folder)
    index = _read_json(folder / "model_index.json", "diffusers model index")
    class_name = str(index.get("_class_name", ""))
    if any(marker in class_name for marker in ("XL", "Flux", "StableDiffusion3", "Kandinsky")):
        raise ModelError(f"{where} is a {class_name} model; expected an SD 1.x model")
    for part in FOLDER_PARTS:
        if not (folder / part).is_dir():
            raise ModelError(f"{where} has no {part}/ folder; expected a diffusers SD 1.x folder "
                             f"with unet/, vae/, text_encoder/")
    unet_config = _read_json(folder / "unet" / "config.json", "UNet config")
    text_config = _read_json(folder / "text_encoder" / "config.json", "text encoder config")
    _check_sd1_networks(unet_config, int(text_config.get("hidden_size", -1)), where)

    loaded: dict[str, Any] = {}
    for part, cls, stem in (("unet", UNet2DConditionModel, "diffusion_pytorch_model"),
                            ("vae", AutoencoderKL, "diffusion_pytorch_model")):
        try:
            loaded[part] = cls.from_pretrained(str(folder), subfolder=part, torch_dtype=dtype,
                                               local_files_only=True,
                                               variant=_variant(folder, part, stem))
        except _LOAD_ERRORS as error:
            raise ModelError(f"{where}: cannot load {part}/: {_first_line(error)}") from None
    try:
        text_encoder = CLIPTextModel.from_pretrained(
            str(folder / "text_encoder"), local_files_only=True,
            variant=_variant(folder, "text_encoder", "model"))
    except _LOAD_ERRORS as error:
        raise ModelError(f"{where}: cannot load text_encoder/: {_first_line(error)}") from None
    return _Networks(loaded["unet"], loaded["vae"], text_encoder,
                     _load_tokenizer(folder, where), _scheduler_config(folder))


# ---------------------------------------------------------------------------------------------
# The cache and the public entry point


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
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)


MODEL_CACHE = ModelCache()


def _cache_key(source: ModelSource, device: torch.device, dtype: torch.dtype) -> tuple[Any, ...]:
    weights = weights_file(source.path)
    stat = weights.stat()
    config = None if source.path.is_dir() else str(_config_dir_for(source))
    return (str(source.path), str(weights), stat.st_size, stat.st_mtime_ns, config, str(device),
            dtype)


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hide the hub libraries' advice and progress bars while loading; our report says enough.

    Their messages (install accelerate, keep modules in float32, weight-loading bars) are
    addressed to library users, not to someone at the invoke> prompt.
    """
    saved = []
    for library in (diffusers_logging, transformers_logging):
        saved.append((library, library.get_verbosity(), library.is_progress_bar_enabled()))
        library.set_verbosity_error()
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, verbosity, bars in saved:
            library.set_verbosity(verbosity)
            if bars:
                library.enable_progress_bar()


def _prepare(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Any:
    module.requires_grad_(False)
    return module.to(device=device, dtype=dtype).eval()


def load_model(name_or_path: str | Path | None = None, *, registry: ModelRegistry,
               device: torch.device | str, dtype: torch.dtype, report: Report = print,
               cache: ModelCache | None = None) -> LoadedModel:
    """Load a registry model (by name; None = the default) or a path, once; then from the cache.

    Every user-fixable failure (missing file, wrong kind of file, not SD 1.x, architecture
    mismatch, a pickle that needs unsafe code) is a one-line ModelError naming the path.
    """
    cache = MODEL_CACHE if cache is None else cache
    device = torch.device(device)
    source = resolve_source(name_or_path, registry)
    _check_path(source)
    key = _cache_key(source, device, dtype)
    cached = cache.get(key)
    if cached is not None:
        return replace(cached, name=source.name,
                       default_width=_default_side(source.width, cached),
                       default_height=_default_side(source.height, cached))

    started = time.monotonic()
    kind = "diffusers folder" if source.is_folder else "single file"
    report(f"loading model {source.name!r} ({kind} {source.path})")
    with _quiet_libraries():
        if source.is_folder:
            networks = _load_folder(source, dtype)
        else:
            networks = _load_single_file(source, report)
        unet = _prepare(networks.unet, device, dtype)
        vae = _prepare(networks.vae, device, dtype)
        text_encoder = _prepare(networks.text_encoder, device, dtype)

    hashes = HashCache(registry.hash_cache_path)
    weights = weights_file(source.path)
    if not hashes.is_cached(weights):
        where = f"remembered in {hashes.cache_path}" if hashes.cache_path else "this run only"
        report(f"  hashing {weights.name} (once; {where})")
    short = hashes.short_hash(weights)

    model = LoadedModel(
        name=source.name, path=source.path, short_hash=short,
        unet=unet, vae=vae, text_encoder=text_encoder,
        tokenizer=networks.tokenizer, scheduler_config=networks.scheduler_config,
        device=device, dtype=dtype, default_width=0, default_height=0,
    )
    model.default_width = _default_side(source.width, model)
    model.default_height = _default_side(source.height, model)
    cache.put(key, model)
    report(f"model {source.name!r} loaded in {time.monotonic() - started:.1f} s: hash {short}, "
           f"default size {model.default_width}x{model.default_height}, "
           f"{describe(device, dtype)}")
    return model


def _default_side(given: int | None, model: LoadedModel) -> int:
    """The entry's size if it names one, else what the UNet was trained at (SD 1.5: 512)."""
    if given is not None:
        return given
    return int(model.unet.config.sample_size) * model.vae_scale_factor
