"""Offline loading of SD 1.x models: diffusers folders and CompVis single files.

Every load names a local folder and passes ``local_files_only=True``; the hub libraries' offline
switch is models.offline.go_offline(), called by the CLI.  Single files are read by content
(models.checkpoint: weights-only pickles, safetensors) and converted with diffusers' own key
mapping into networks built from a local config folder (models.single_file).  Loaded networks
own their memory (never views into a memory-mapped file), so the same weights give the same
pixels whatever the container.

Which models stay loaded is the caller's business: pass a ModelCache (models.cache; the
ModelManager owns one); without one nothing is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from dreamline.devices import attention_kind, describe
from dreamline.models.cache import ModelCache
from dreamline.models.checkpoint import read_checkpoint
from dreamline.models.folder import (
    load_folder_networks,
    load_tokenizer,
    scheduler_config,
)
from dreamline.models.hashing import HashCache
from dreamline.models.kinds import UNET_FIRST_CONV
from dreamline.models.registry import ModelRegistry
from dreamline.models.single_file import networks_from_checkpoint
from dreamline.models.sources import (  # noqa: F401  (re-exported for callers and tests)
    EPSILON,
    SD15_CONFIG_DIR,
    SD15_INPAINT_CONFIG_DIR,
    TOKENIZER_DIR,
    V_PREDICTION,
    ModelSource,
    check_path,
    config_dir_for,
    resolve_source,
    sibling_prediction_type,
    sibling_yaml,
    weights_file,
)
from dreamline.models.types import LoadedModel
from dreamline.models.vae import load_vae, sidecar, vae_weights_file

Report = Callable[[str], None]
_ALIGNMENT = 64  # bytes: what torch's own CPU allocator gives every tensor


@dataclass
class _Networks:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict[str, Any]
    prediction_type: str
    prediction_from: str  # where the prediction type was found, for the report


def _prediction(source: ModelSource, file_says_v: bool,
                schedule: dict[str, Any]) -> tuple[str, str]:
    """(prediction type, where it came from): models.yaml, the sibling yaml, the file's v_pred
    key, the folder's scheduler config, else epsilon."""
    if source.prediction_type is not None:
        return source.prediction_type, "its models.yaml entry"
    sibling = sibling_prediction_type(source.path)
    if sibling is not None:
        return sibling, sibling_yaml(source.path).name
    if file_says_v:
        return V_PREDICTION, "the file's v_pred key"
    found = schedule.get("prediction_type")
    if found in (EPSILON, V_PREDICTION):
        return str(found), "its scheduler config"
    return EPSILON, "the default"


def vae_choice(source: ModelSource, vae: str | Path | None) -> tuple[Path, str] | None:
    """The VAE to use instead of the model's own, and why: --vae, then the models.yaml entry's
    vae:, then an A1111 sidecar beside a single file; None: the model's own."""
    if vae is not None:
        return Path(vae).expanduser().resolve(), "--vae"
    if source.vae is not None:
        return source.vae, "its models.yaml entry"
    found = sidecar(source.path)
    if found is not None:
        return found.resolve(), "found beside the checkpoint"
    return None


def _load_single_file(source: ModelSource, report: Report, vae_given: bool) -> _Networks:
    where = str(source.path)
    config_dir = config_dir_for(source)
    sibling_prediction_type(source.path)  # a broken sibling yaml fails before reading gigabytes
    checkpoint = read_checkpoint(source.path, vae_given=vae_given)
    first_conv = checkpoint.tensors.get(UNET_FIRST_CONV)
    if (source.config_dir is None and first_conv is not None and first_conv.ndim == 4
            and first_conv.shape[1] == 9):
        config_dir = SD15_INPAINT_CONFIG_DIR  # an SD 1.x inpainting checkpoint
        report(f"  inpainting model (9-channel UNet): configs from {config_dir.name}")
    unet, vae, text_encoder = networks_from_checkpoint(checkpoint.tensors, config_dir, where)
    ignored = len(checkpoint.tensors) - sum(
        len(module.state_dict()) for module in (unet, vae) if module is not None
    ) - len(text_encoder.state_dict())
    if ignored > 0:
        report(f"  ignored about {ignored} tensors that belong to no network "
               f"(EMA copies, training schedules)")
    schedule = scheduler_config(config_dir)
    prediction, found = _prediction(source, checkpoint.v_pred, schedule)
    return _Networks(unet, vae, text_encoder, load_tokenizer(config_dir, where), schedule,
                     prediction, found)


def _load_folder(source: ModelSource, dtype: torch.dtype) -> _Networks:
    unet, vae, text_encoder = load_folder_networks(source.path, dtype)
    schedule = scheduler_config(source.path)
    prediction, found = _prediction(source, False, schedule)
    return _Networks(unet, vae, text_encoder, load_tokenizer(source.path, str(source.path)),
                     schedule, prediction, found)


def cache_key(source: ModelSource, device: torch.device, dtype: torch.dtype,
              vae: Path | None = None) -> tuple[Any, ...]:
    """What identifies a loaded model: the weights file as it is now, config, device, dtype,
    and the VAE file (as it is now) used instead of its own."""
    weights = weights_file(source.path)
    stat = weights.stat()
    config = None if source.path.is_dir() else str(config_dir_for(source))
    vae_state: tuple[Any, ...] = ()
    if vae is not None and vae.exists():
        vae_stat = vae_weights_file(vae).stat()
        vae_state = (str(vae), vae_stat.st_size, vae_stat.st_mtime_ns)
    return (str(source.path), str(weights), stat.st_size, stat.st_mtime_ns, config, str(device),
            dtype, source.prediction_type, vae_state)


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hide the hub libraries' advice and progress bars while loading; our report says enough."""
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
    """Frozen, eval mode, on ``device`` in ``dtype``, every tensor in memory of its own.

    Tensors used in place from a memory-mapped file sit at whatever address the file put them
    (a safetensors header has any length), and CPU kernels pick different code paths for
    unaligned data: the same weights would give other pixels from another container.
    """
    module.requires_grad_(False)
    module = module.to(device=device, dtype=dtype).eval()
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.device.type == "cpu" and tensor.numel() and tensor.data_ptr() % _ALIGNMENT:
            tensor.data = tensor.data.clone()
    return module


def _default_side(given: int | None, model: LoadedModel) -> int:
    """The entry's size if it names one, else what the UNet was trained at (SD 1.5: 512)."""
    if given is not None:
        return given
    return int(model.unet.config.sample_size) * model.vae_scale_factor


def load_model(name_or_path: str | Path | None = None, *, registry: ModelRegistry,
               device: torch.device | str, dtype: torch.dtype, report: Report = print,
               cache: ModelCache | None = None, vae: str | Path | None = None) -> LoadedModel:
    """Load a registry model (by name; None = the default) or a path; from ``cache`` if there.

    ``vae``: a VAE file or diffusers vae/ folder used instead of the model's own (--vae); else
    the entry's ``vae:``, else an A1111 sidecar (``<checkpoint>.vae.pt`` ...) beside the file.
    Every user-fixable failure (missing file, wrong kind of file, not SD 1.x, architecture
    mismatch, a pickle that needs code) is a one-line ModelError naming the path.
    """
    device = torch.device(device)
    source = resolve_source(name_or_path, registry)
    check_path(source)
    chosen_vae = vae_choice(source, vae)
    key = cache_key(source, device, dtype, chosen_vae[0] if chosen_vae else None)
    cached = cache.get(key) if cache is not None else None
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
            networks = _load_single_file(source, report, vae_given=chosen_vae is not None)
        if chosen_vae is not None:
            vae_path, why = chosen_vae
            report(f"  using VAE {vae_path.name} ({why}: {vae_path})")
            config_root = source.path if source.is_folder else config_dir_for(source)
            networks.vae = load_vae(vae_path, config_root / "vae" / "config.json", dtype)
        unet = _prepare(networks.unet, device, dtype)
        vae = _prepare(networks.vae, device, dtype)
        text_encoder = _prepare(networks.text_encoder, device, dtype)
    if networks.prediction_type != EPSILON:
        report(f"  {networks.prediction_type} model (from {networks.prediction_from})")

    hashes = HashCache(registry.hash_cache_path)
    weights = weights_file(source.path)
    if not hashes.is_cached(weights):
        report(f"  hashing {weights.name} (once; remembered in {hashes.cache_path})")
    short = hashes.short_hash(weights)
    vae_name = vae_hash = None
    if chosen_vae is not None:
        vae_name = chosen_vae[0].name
        vae_hash = hashes.short_hash(vae_weights_file(chosen_vae[0]))

    model = LoadedModel(
        name=source.name, path=source.path, short_hash=short,
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=networks.tokenizer,
        scheduler_config={**networks.scheduler_config,
                          "prediction_type": networks.prediction_type},
        device=device, dtype=dtype, default_width=0, default_height=0,
        prediction_type=networks.prediction_type, vae_name=vae_name, vae_hash=vae_hash,
    )
    model.default_width = _default_side(source.width, model)
    model.default_height = _default_side(source.height, model)
    if cache is not None:
        cache.put(key, model)
    with_vae = f" with VAE {vae_name} [{vae_hash}]" if vae_name else ""
    report(f"model {source.name!r}{with_vae} loaded in {time.monotonic() - started:.1f} s: "
           f"hash {short}, "
           f"default size {model.default_width}x{model.default_height}, "
           f"{describe(device, dtype)}, attention {attention_kind(unet, vae)}")
    return model
