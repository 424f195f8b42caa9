"""Checkpoint files users really have: containers, wrappers, original releases, v-prediction,
files that are not whole models, hostile pickles, and the same pixels from every container."""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from compvis_layout import UNET_PREFIX
from model_files import ModelFiles, compvis_state_dict, model_files  # noqa: F401
from safetensors.torch import save_file
from test_models_convert import assert_bit_identical, load_file_as_model

from dreamline.core import Generator
from dreamline.errors import ModelError
from dreamline.models.kinds import sd1_problem
from dreamline.models.loader import load_model
from dreamline.models.registry import ModelRegistry
from dreamline.request import Request

REPO = Path(__file__).resolve().parents[1]


def state(files: ModelFiles) -> dict[str, torch.Tensor]:
    return compvis_state_dict(files.parts)


def refused(path: Path, config: Path, *fragments: str) -> str:
    with pytest.raises(ModelError) as caught:
        load_file_as_model(path, config)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---- containers and wrappers ----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["flat", "nested", "model-key", "legacy", "st-named-ckpt"])
def test_every_container_loads_bit_identical(model_files: ModelFiles, tmp_path: Path,  # noqa: F811
                                             layout: str) -> None:
    path = tmp_path / "m.ckpt"
    weights = state(model_files)
    if layout == "flat":
        torch.save(weights, str(path))
    elif layout == "nested":
        torch.save({"state_dict": weights, "global_step": 3}, str(path))
    elif layout == "model-key":
        torch.save({"model": weights, "epoch": 1}, str(path))
    elif layout == "legacy":
        torch.save({"state_dict": weights}, str(path), _use_new_zipfile_serialization=False)
    else:  # a .safetensors file that was given a .ckpt name
        shutil.copy(model_files.safetensors, path)
    assert_bit_identical(load_file_as_model(path, model_files.config_dir), model_files.parts)


class _FakeCallback:
    """Pickles as pytorch_lightning's ModelCheckpoint without Lightning being installed."""

    def __init__(self) -> None:
        self.monitor = "val/loss"
        self.best_model_path = "/somewhere/epoch=3.ckpt"


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: Any) -> None:
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        module_name = ".".join(parts[:depth])
        if depth < len(parts) and module_name in sys.modules:
            continue
        module = types.ModuleType(module_name)
        monkeypatch.setitem(sys.modules, module_name, module)
    for key, value in attributes.items():
        setattr(sys.modules[name], key, value)


def _old_numpy_scalar(dtype: Any, data: bytes) -> Any:
    raise AssertionError("never called: stands for numpy.core.multiarray.scalar")


class _OldScalar:
    """Pickles as numpy<2's numpy.core.multiarray.scalar(dtype, bytes)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_old_numpy_scalar, (np.dtype("float64"), np.float64(0.25).tobytes()))


def test_original_release_ckpt_with_lightning_and_numpy_objects_loads(
        model_files: ModelFiles, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = "pytorch_lightning.callbacks.model_checkpoint"
    _FakeCallback.__module__, _FakeCallback.__qualname__ = module, "ModelCheckpoint"
    _old_numpy_scalar.__module__, _old_numpy_scalar.__qualname__ = \
        "numpy.core.multiarray", "scalar"
    with monkeypatch.context() as patch:
        _fake_module(patch, module, ModelCheckpoint=_FakeCallback)
        patch.setitem(sys.modules, "numpy.core.multiarray",
                      types.SimpleNamespace(scalar=_old_numpy_scalar))
        path = tmp_path / "sd-v1-original.ckpt"
        torch.save({"state_dict": state(model_files), "epoch": 6, "global_step": 470000,
                    "callbacks": {_FakeCallback: _FakeCallback()},
                    "best_score": _OldScalar(), "numpy2_score": np.float64(0.5),
                    "dtype": np.dtype("float32")}, str(path))
    assert "pytorch_lightning" not in sys.modules
    assert_bit_identical(load_file_as_model(path, model_files.config_dir), model_files.parts)
    assert "pytorch_lightning" not in sys.modules  # a stand-in, never the real thing


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_gets_our_refusal_naming_the_global(
        model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": state(model_files), "x": _Hostile(marker)}, str(path))
    message = refused(path, model_files.config_dir, "dreamline refused", "posix.system",
                      "could run code")
    assert "weights_only" not in message and "add_safe_globals" not in message
    assert not marker.exists()


# ---- files that are not whole models --------------------------------------------------------

def test_a_diffusers_attention_processor_lora_is_named(model_files: ModelFiles,  # noqa: F811
                                                       tmp_path: Path) -> None:
    path = tmp_path / "pytorch_lora_weights.bin"
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora."
    torch.save({key + "down.weight": torch.zeros(4, 32), key + "up.weight": torch.zeros(32, 4)},
               str(path))
    message = refused(path, model_files.config_dir, "is a LoRA", "whole SD 1.x checkpoint")
    assert "diffusers folder" not in message


def test_an_a1111_embedding_is_named(model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "my-style.pt"
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(2, 768)},
                "name": "my-style", "step": 3000}, str(path))
    message = refused(path, model_files.config_dir, "textual-inversion embedding")
    assert "holds no tensors" not in message


def test_a_vae_alone_and_an_odd_unet_are_named(model_files: ModelFiles,  # noqa: F811
                                              tmp_path: Path) -> None:
    weights = state(model_files)
    vae = {key.removeprefix("first_stage_model."): value for key, value in weights.items()
           if key.startswith("first_stage_model.")}
    save_file(vae, str(tmp_path / "vae-ft-mse.safetensors"))
    refused(tmp_path / "vae-ft-mse.safetensors", model_files.config_dir, "is a VAE alone")
    first = UNET_PREFIX + "input_blocks.0.0.weight"
    weights[first] = torch.zeros(weights[first].shape[0], 7, 3, 3)
    save_file(weights, str(tmp_path / "odd.safetensors"))
    refused(tmp_path / "odd.safetensors", model_files.config_dir,
            "is a UNet with 7 input channels")


@pytest.mark.parametrize("keys, fragment", [
    ([], "holds no tensors"),
    (["conditioner.embedders.0.transformer.x", "model.diffusion_model.x"], "SDXL"),
    (["cond_stage_model.model.token_embedding", "model.diffusion_model.x",
      "first_stage_model.x"], "SD 2.x"),
    (["down_blocks.0.resnets.0.conv1.weight"], "single diffusers part"),
    (["lora_unet_down_blocks_0.alpha"], "LoRA"),
    (["emb_params"], "embedding"),
    (["model.diffusion_model.x", "first_stage_model.x"],
     "no cond_stage_model.transformer.* (CLIP text encoder) keys"),
    (["weight", "bias"], "no model.diffusion_model.* (UNet), no first_stage_model.* (VAE)"),
])
def test_non_sd1_key_sets_are_explained(keys: list[str], fragment: str) -> None:
    problem = sd1_problem(keys)
    assert problem is not None and fragment in problem


def test_sd1_key_set_passes() -> None:
    assert sd1_problem(["model.diffusion_model.a", "first_stage_model.b",
                        "cond_stage_model.transformer.text_model.c", "v_pred"]) is None


# ---- v-prediction ---------------------------------------------------------------------------

def _v_file(files: ModelFiles, directory: Path, marker: bool) -> Path:
    weights = state(files)
    if marker:
        weights["v_pred"] = torch.zeros(0)
    path = directory / "ft.safetensors"
    save_file(weights, str(path))
    return path


@pytest.mark.parametrize("how", ["key", "sibling-yaml", "models-yaml", "none"])
def test_v_prediction_fine_tunes_are_detected(model_files: ModelFiles, tmp_path: Path,  # noqa: F811
                                              how: str) -> None:
    path = _v_file(model_files, tmp_path, marker=how == "key")
    if how == "sibling-yaml":
        (tmp_path / "ft.yaml").write_text(
            'model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n'
            '    parameterization: "v"\n', encoding="utf-8")
    extra = "  prediction_type: v_prediction\n" if how == "models-yaml" else ""
    (tmp_path / "m.yaml").write_text(f"m:\n  path: {path}\n  config: {model_files.config_dir}\n"
                                     f"{extra}", encoding="utf-8")
    lines: list[str] = []
    model = load_model("m", registry=ModelRegistry.load(tmp_path / "m.yaml"), device="cpu",
                       dtype=torch.float32, report=lines.append)
    expected = "epsilon" if how == "none" else "v_prediction"
    assert model.prediction_type == expected
    assert model.scheduler_config["prediction_type"] == expected
    assert any("v_prediction model" in line for line in lines) == (how != "none")


def test_a_diffusers_folder_keeps_its_scheduler_prediction_type(
        model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "v-folder"
    shutil.copytree(model_files.diffusers, folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "prediction_type": "v_prediction"}))
    model = load_model(str(folder), registry=ModelRegistry.load(model_files.registry_yaml),
                       device="cpu", dtype=torch.float32, report=lambda line: None)
    assert model.prediction_type == "v_prediction"


# ---- same weights, same pixels --------------------------------------------------------------

def test_the_same_weights_give_the_same_pixels_from_every_container(
        model_files: ModelFiles) -> None:  # noqa: F811
    registry = ModelRegistry.load(model_files.registry_yaml)
    generator = torch.Generator().manual_seed(7)
    latents = torch.randn(1, 4, 8, 8, generator=generator)
    hidden = torch.randn(1, 77, 64, generator=generator)
    pixels, noise = {}, {}
    for name in ("tiny-diffusers", "tiny-st", "tiny-ckpt"):
        model = load_model(name, registry=registry, device="cpu", dtype=torch.float32,
                           report=lambda line: None)
        with torch.no_grad():
            noise[name] = model.unet(latents, 10, encoder_hidden_states=hidden).sample
        image = Generator(model, report=lambda line: None).generate(
            Request(prompt="a tree by a river", steps=6, seed=11, width=64, height=64))[0].image
        pixels[name] = np.asarray(image)
    for name in ("tiny-st", "tiny-ckpt"):
        assert torch.equal(noise[name], noise["tiny-diffusers"]), name
        assert np.array_equal(pixels[name], pixels["tiny-diffusers"]), name


# ---- the checkout stays as it was -----------------------------------------------------------

def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in root.rglob("*"):
        parts = set(path.relative_to(root).parts)
        if path.is_file() and not parts & {".git", "__pycache__", ".venv", ".pytest_cache"}:
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_loading_a_model_leaves_the_checkout_unchanged(user_cache_dir: Path) -> None:
    before = _snapshot(REPO)
    model = load_model("demo", registry=ModelRegistry.load(REPO / "configs" / "models.yaml"),
                       device="cpu", dtype=torch.float32, report=lambda line: None)
    assert model.short_hash
    assert _snapshot(REPO) == before
    assert (user_cache_dir / "dreamline" / "model_hashes.json").is_file()
