"""load_model: both layouts through one code path, offline, cached, with one-line errors."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
from model_files import SIZE, ModelFiles, compvis_state_dict, model_files  # noqa: F401
from safetensors.torch import save_file

from dreamline.errors import ModelError
from dreamline.models.kinds import UNET_PREFIX
from dreamline.models.loader import ModelCache, load_model
from dreamline.models.registry import ModelRegistry

ASTRONAUT_IDS = [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]
LAYOUTS = ("tiny-diffusers", "tiny-st", "tiny-ckpt")


@pytest.fixture(scope="module")
def registry(model_files: ModelFiles) -> ModelRegistry:  # noqa: F811
    return ModelRegistry.load(model_files.registry_yaml)


@pytest.fixture(scope="module")
def shared_cache() -> ModelCache:
    return ModelCache(max_models=len(LAYOUTS) + 1)


@pytest.fixture(scope="module")
def loaded(registry: ModelRegistry, shared_cache: ModelCache) -> dict[str, Any]:
    """Each layout loaded once for the read-only tests below."""
    return {name: load(name, registry, shared_cache) for name in LAYOUTS}


def load(name: Any, registry: ModelRegistry, cache: ModelCache | None = None,
         dtype: torch.dtype = torch.float32, lines: list[str] | None = None) -> Any:
    """load_model on the CPU with a private cache, collecting the report lines."""
    sink = [] if lines is None else lines
    return load_model(name, registry=registry, device="cpu", dtype=dtype, report=sink.append,
                      cache=ModelCache() if cache is None else cache)


@torch.no_grad()
def outputs(parts: Any) -> list[torch.Tensor]:
    """Each network's output on one fixed input."""
    get = parts.__getitem__ if isinstance(parts, dict) else parts.__getattribute__
    generator = torch.Generator().manual_seed(7)
    ids = torch.tensor([ASTRONAUT_IDS + [49407] * 3])
    hidden = get("text_encoder")(ids).last_hidden_state
    latents = torch.randn(1, 4, 8, 8, generator=generator)
    noise_pred = get("unet")(latents, 10, encoder_hidden_states=hidden).sample
    image = get("vae").decode(latents).sample
    encoded = get("vae").encode(image).latent_dist.mean
    return [hidden, noise_pred, image, encoded]


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_loads_the_original_weights(model_files: ModelFiles,  # noqa: F811
                                                 loaded: dict[str, Any], name: str) -> None:
    model = loaded[name]
    for part in ("unet", "vae", "text_encoder"):
        original = model_files.parts[part].state_dict()
        loaded = getattr(model, part).state_dict()
        assert set(loaded) == set(original), part
        for key, tensor in original.items():
            assert torch.equal(loaded[key], tensor), f"{part}: {key}"
        assert not getattr(model, part).training
        assert all(not p.requires_grad for p in getattr(model, part).parameters())
    # Loaded tensors own aligned memory (not views into a memory-mapped file), so the
    # outputs are bit-equal too, whatever the container.
    for expected, got in zip(outputs(model_files.parts), outputs(model), strict=True):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("name", LAYOUTS)
def test_loaded_model_fields(registry: ModelRegistry, loaded: dict[str, Any], name: str) -> None:
    model = loaded[name]
    assert model.name == name
    assert model.path == registry.entry(name).path
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    assert (model.default_width, model.default_height) == (SIZE, SIZE)
    assert model.vae_scale_factor == 8 and model.size_multiple == 64
    assert model.scheduler_config["beta_schedule"] == "scaled_linear"
    assert model.scheduler_config["num_train_timesteps"] == 1000
    ids = model.tokenizer("a photograph of an astronaut riding a horse").input_ids
    assert ids == ASTRONAUT_IDS
    weights = (model.path / "unet" / "diffusion_pytorch_model.safetensors"
               if model.path.is_dir() else model.path)
    assert model.short_hash == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]


def test_single_file_without_tokenizer_uses_the_shipped_one(
        model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "config"
    shutil.copytree(model_files.config_dir, config, ignore=shutil.ignore_patterns("tokenizer"))
    (tmp_path / "m.yaml").write_text(
        f"m:\n  path: {model_files.safetensors}\n  config: {config}\n", encoding="utf-8")
    model = load("m", ModelRegistry.load(tmp_path / "m.yaml"))
    assert model.tokenizer("a photograph of an astronaut riding a horse").input_ids == ASTRONAUT_IDS
    assert (model.default_width, model.default_height) == (SIZE, SIZE)  # from the UNet config


def test_loading_needs_no_network(model_files: ModelFiles, registry: ModelRegistry,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network access attempted during a model load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in LAYOUTS:
        assert load(name, registry).unet is not None
    assert attempts == []


def test_a_path_loads_without_a_registry_entry(
        model_files: ModelFiles, registry: ModelRegistry, loaded: dict[str, Any],  # noqa: F811
        shared_cache: ModelCache, tmp_path: Path) -> None:
    model = load(str(model_files.diffusers), registry, shared_cache)
    assert model.name == registry.default_name  # the entry that names this path
    assert model.unet is loaded[registry.default_name].unet
    plain = tmp_path / "copy-of-diffusers"
    shutil.copytree(model_files.diffusers, plain)
    other = load(plain, registry, shared_cache)
    assert other.name == "copy-of-diffusers"
    assert (other.default_width, other.default_height) == (SIZE, SIZE)


def test_default_model_is_loaded_for_none(registry: ModelRegistry, loaded: dict[str, Any],
                                          shared_cache: ModelCache) -> None:
    model = load(None, registry, shared_cache)
    assert model.name == "tiny-diffusers" and model.unet is loaded["tiny-diffusers"].unet


def test_other_dtype(registry: ModelRegistry) -> None:
    model = load("tiny-st", registry, dtype=torch.bfloat16)
    assert {p.dtype for p in model.unet.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.text_encoder.parameters()} == {torch.bfloat16}
    assert model.dtype == torch.bfloat16


def test_models_load_once_and_stay_loaded(registry: ModelRegistry,
                                          model_files: ModelFiles) -> None:  # noqa: F811
    cache = ModelCache(max_models=2)
    lines: list[str] = []
    first = load("tiny-diffusers", registry, cache, lines=lines)
    other = load("tiny-st", registry, cache, lines=lines)
    assert sum(line.startswith("loading model") for line in lines) == 2
    again = load("tiny-diffusers", registry, cache, lines=lines)  # !switch back: no reload
    assert again.unet is first.unet and again.text_encoder is first.text_encoder
    by_path = load(model_files.safetensors, registry, cache, lines=lines)
    assert by_path.unet is other.unet
    assert sum(line.startswith("loading model") for line in lines) == 2
    load("tiny-ckpt", registry, cache, lines=lines)  # a third model evicts the least recent
    assert len(cache) == 2
    assert load("tiny-st", registry, cache, lines=lines).unet is other.unet
    assert sum(line.startswith("loading model") for line in lines) == 3
    assert load("tiny-diffusers", registry, cache, lines=lines).unet is not first.unet
    assert sum(line.startswith("loading model") for line in lines) == 4


def test_a_changed_file_is_loaded_again(model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "m.safetensors"
    shutil.copy(model_files.safetensors, path)
    (tmp_path / "m.yaml").write_text(f"m:\n  path: m.safetensors\n  config: "
                                     f"{model_files.config_dir}\n", encoding="utf-8")
    registry = ModelRegistry.load(tmp_path / "m.yaml")
    cache = ModelCache()
    first = load("m", registry, cache)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load("m", registry, cache).unet is not first.unet


# ---------------------------------------------------------------------------------------------
# Errors: one line, naming the path and what was expected


def expect_error(name: Any, registry: ModelRegistry, *fragments: str) -> str:
    with pytest.raises(ModelError) as caught:
        load(name, registry)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def empty_registry(tmp_path: Path) -> ModelRegistry:
    (tmp_path / "models.yaml").write_text(
        "known:\n  path: nowhere.safetensors\nbuiltin:\n  path: \"@builtin/no-such-model\"\n",
        encoding="utf-8")
    return ModelRegistry.load(tmp_path / "models.yaml")


def test_missing_file(tmp_path: Path, empty_registry: ModelRegistry) -> None:
    missing = tmp_path / "absent.safetensors"
    expect_error(str(missing), empty_registry, str(missing), "does not exist", "expected")
    expect_error("known", empty_registry, "nowhere.safetensors", "does not exist")


def test_missing_builtin_model_is_a_clear_error(empty_registry: ModelRegistry) -> None:
    expect_error("builtin", empty_registry, "no-such-model", "does not exist")


def test_unknown_name_lists_the_known_ones(empty_registry: ModelRegistry) -> None:
    expect_error("sd-9", empty_registry, "unknown model 'sd-9'", "known, builtin")


def test_folder_without_model_index(tmp_path: Path, empty_registry: ModelRegistry) -> None:
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    expect_error(str(folder), empty_registry, str(folder), "without model_index.json")


def test_file_of_another_kind(tmp_path: Path, empty_registry: ModelRegistry) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    for name, fragment in (("picture.safetensors", "is not a safetensors file: it is a PNG"),
                           ("picture.ckpt", "is not a PyTorch checkpoint: it is a PNG")):
        path = tmp_path / name
        path.write_bytes(png)
        expect_error(str(path), empty_registry, str(path), fragment)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    expect_error(str(text), empty_registry, "is not a model file")


def test_checkpoint_that_is_not_sd1(tmp_path: Path, empty_registry: ModelRegistry) -> None:
    path = tmp_path / "classifier.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(path))
    expect_error(str(path), empty_registry, str(path), "is not an SD 1.x model",
                 "model.diffusion_model.")
    sd2 = tmp_path / "sd2.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1),
                               "first_stage_model.x": torch.zeros(1),
                               "cond_stage_model.model.x": torch.zeros(1)}}, str(sd2))
    expect_error(str(sd2), empty_registry, "SD 2.x")


class Payload:
    """Unpickling this would create a file: proof that the pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_ckpt_needing_unsafe_unpickling_is_refused_unopened(
        tmp_path: Path, model_files: ModelFiles, empty_registry: ModelRegistry) -> None:  # noqa: F811
    marker = tmp_path / "code-ran"
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": compvis_state_dict(model_files.parts), "payload": Payload(marker),
                "args": argparse.Namespace(lr=1)}, str(path))
    message = expect_error(str(path), empty_registry, str(path), "refused",
                           "asks for the Python global", "could run code", "safetensors")
    advice = message.removeprefix(str(path))
    assert "weights_only" not in advice and "unsafe" not in advice
    assert not marker.exists()


def test_wrong_architecture_for_the_config(model_files: ModelFiles,  # noqa: F811
                                           empty_registry: ModelRegistry) -> None:
    # No config given: the tiny file is checked against the shipped SD 1.5 configs.
    expect_error(str(model_files.safetensors), empty_registry, str(model_files.safetensors),
                 "does not match the config in", "sd15", "tensors missing")


def test_tensor_shapes_that_differ_from_the_config(tmp_path: Path, model_files: ModelFiles,  # noqa: F811
                                                   ) -> None:
    config = tmp_path / "config"
    shutil.copytree(model_files.config_dir, config)
    vae_config = config / "vae" / "config.json"
    vae_config.write_text(vae_config.read_text().replace('"latent_channels": 4',
                                                         '"latent_channels": 8'))
    (tmp_path / "m.yaml").write_text(
        f"m:\n  path: {model_files.ckpt}\n  config: {config}\n", encoding="utf-8")
    expect_error("m", ModelRegistry.load(tmp_path / "m.yaml"), str(model_files.ckpt),
                 "the VAE tensor", "has shape", f"the config in {config} expects")


def test_missing_tensors(tmp_path: Path, model_files: ModelFiles,  # noqa: F811
                         empty_registry: ModelRegistry) -> None:
    state = compvis_state_dict(model_files.parts)
    del state[UNET_PREFIX + "out.2.weight"]
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path))
    (tmp_path / "p.yaml").write_text(
        f"p:\n  path: {path}\n  config: {model_files.config_dir}\n", encoding="utf-8")
    expect_error("p", ModelRegistry.load(tmp_path / "p.yaml"), str(path),
                 "1 tensors missing", "conv_out.weight")


def test_unet_of_other_inputs_is_refused(tmp_path: Path, model_files: ModelFiles,  # noqa: F811
                                         empty_registry: ModelRegistry) -> None:
    """4 (image) and 9 (inpainting) input channels load; others are named (issue 10 made 9
    loadable: tests/test_inpaint_unet.py)."""
    folder = tmp_path / "inpaint"
    shutil.copytree(model_files.diffusers, folder)
    config_path = folder / "unet" / "config.json"
    config_path.write_text(config_path.read_text().replace('"in_channels": 4',
                                                           '"in_channels": 7'))
    expect_error(str(folder), empty_registry, "7 input channels; expected 4")


def test_damaged_diffusers_folder(tmp_path: Path, model_files: ModelFiles,  # noqa: F811
                                  empty_registry: ModelRegistry) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(model_files.diffusers, folder)
    (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x89PNG nonsense")
    expect_error(str(folder), empty_registry, str(folder), "cannot load vae/")


def test_shipped_sd15_schedule_leaves_each_sampler_its_own_spacing() -> None:
    """SD 1.5's released scheduler config names no timestep_spacing, so a diffusers folder gives
    LMS/Euler 'linspace' and PNDM/DDIM 'leading'; the config shipped for single files must do the
    same, or one model would sample differently depending on its file layout."""
    import json

    from diffusers import DDIMScheduler, LMSDiscreteScheduler

    from dreamline.models.registry import DATA_DIR

    config = json.loads((DATA_DIR / "sd15" / "scheduler" / "scheduler_config.json").read_text())
    assert "timestep_spacing" not in config
    assert LMSDiscreteScheduler.from_config(config).config.timestep_spacing == "linspace"
    assert DDIMScheduler.from_config(config).config.timestep_spacing == "leading"
