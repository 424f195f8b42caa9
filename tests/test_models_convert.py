"""CompVis single files through the public loader: every tensor arrives bit-identical.

dreamline converts CompVis keys with diffusers' own mapping; the test files are written with
tests/compvis_layout.py, itself checked against diffusers' from_single_file below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from compvis_layout import TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX, diffusers_to_compvis
from diffusers import AutoencoderKL, UNet2DConditionModel
from model_files import ModelFiles, compvis_state_dict, model_files  # noqa: F401
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from dreamline.errors import ModelError
from dreamline.models.loader import SD15_CONFIG_DIR, load_model
from dreamline.models.registry import ModelRegistry

PARTS = ("unet", "vae", "text_encoder")


def load_file_as_model(path: Path, config: Path, dtype: torch.dtype = torch.float32,
                       lines: list[str] | None = None) -> Any:
    """Load ``path`` through a one-entry models.yaml naming ``config`` (no cache)."""
    yaml_path = path.parent / f"{path.name}.models.yaml"
    yaml_path.write_text(f"m:\n  path: {path}\n  config: {config}\n", encoding="utf-8")
    sink = [] if lines is None else lines
    return load_model("m", registry=ModelRegistry.load(yaml_path), device="cpu", dtype=dtype,
                      report=sink.append)


def assert_bit_identical(model: Any, parts: dict[str, Any],
                         convert: Any = lambda tensor: tensor) -> None:
    for part in PARTS:
        original = parts[part].state_dict()
        loaded = getattr(model, part).state_dict()
        assert set(loaded) == set(original), part
        for key, tensor in original.items():
            expected = convert(tensor) if tensor.is_floating_point() else tensor
            assert torch.equal(loaded[key], expected), f"{part}: {key}"


def test_a_compvis_file_loads_every_tensor_bit_identical(model_files: ModelFiles,  # noqa: F811
                                                         tmp_path: Path) -> None:
    model = load_file_as_model(model_files.safetensors, model_files.config_dir)
    assert_bit_identical(model, model_files.parts)


def test_compvis_names_and_shapes_of_known_tensors(model_files: ModelFiles) -> None:  # noqa: F811
    compvis = compvis_state_dict(model_files.parts)
    unet = model_files.parts["unet"].state_dict()
    assert torch.equal(compvis[UNET_PREFIX + "input_blocks.1.0.in_layers.2.weight"],
                       unet["down_blocks.0.resnets.0.conv1.weight"])
    assert torch.equal(compvis[UNET_PREFIX + "output_blocks.5.2.conv.weight"],
                       unet["up_blocks.1.upsamplers.0.conv.weight"])
    assert torch.equal(compvis[UNET_PREFIX + "output_blocks.2.1.conv.weight"],
                       unet["up_blocks.0.upsamplers.0.conv.weight"])
    vae = model_files.parts["vae"].state_dict()
    q = compvis[VAE_PREFIX + "encoder.mid.attn_1.q.weight"]
    assert q.shape == (64, 64, 1, 1)  # 1x1 conv in CompVis, linear in diffusers
    assert torch.equal(q[:, :, 0, 0], vae["encoder.mid_block.attentions.0.to_q.weight"])
    assert torch.equal(compvis[VAE_PREFIX + "decoder.up.3.block.0.conv1.weight"],
                       vae["decoder.up_blocks.0.resnets.0.conv1.weight"])
    assert TEXT_PREFIX + "embeddings.token_embedding.weight" in compvis


def test_diffusers_own_loader_reads_our_compvis_file(model_files: ModelFiles) -> None:  # noqa: F811
    """The independent check of the test writer: diffusers' from_single_file gives the
    original weights back from our file."""
    for part, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        loaded = cls.from_single_file(str(model_files.safetensors),
                                      config=str(model_files.config_dir), subfolder=part,
                                      local_files_only=True)
        original = model_files.parts[part].state_dict()
        got = loaded.state_dict()
        assert set(got) == set(original), part
        for key, tensor in original.items():
            assert torch.equal(got[key], tensor), f"{part}: {key}"


@pytest.mark.parametrize("position_ids", ["none", "int64", "float32"])
def test_old_text_keys_ema_copies_and_position_ids_load(
        model_files: ModelFiles, tmp_path: Path, position_ids: str) -> None:  # noqa: F811
    """Checkpoints saved with older transformers lack the text_model. level; original releases
    carry EMA copies, schedules and position_ids: the weights still arrive bit-identical."""
    parts = model_files.parts
    old = {key.replace(TEXT_PREFIX, "cond_stage_model.transformer."): value
           for key, value in compvis_state_dict(parts).items()}
    if position_ids != "none":
        dtype = torch.int64 if position_ids == "int64" else torch.float32
        old["cond_stage_model.transformer.embeddings.position_ids"] = \
            torch.arange(77, dtype=dtype)[None]
    for key, tensor in list(old.items())[:120]:  # EMA copies: flat names, other values
        if key.startswith(UNET_PREFIX):
            old["model_ema." + key[len("model."):].replace(".", "")] = tensor + 1
    old["model_ema.decay"] = torch.tensor(0.999)
    old["alphas_cumprod"] = torch.ones(1000)
    path = tmp_path / "old.safetensors"
    save_file(old, str(path))
    lines: list[str] = []
    model = load_file_as_model(path, model_files.config_dir, lines=lines)
    assert_bit_identical(model, parts)
    assert any("ignored" in line for line in lines)


@pytest.mark.parametrize("stored", [torch.float16, torch.bfloat16])
def test_half_precision_files_load_exactly(model_files: ModelFiles, tmp_path: Path,  # noqa: F811
                                           stored: torch.dtype) -> None:
    state = {key: value.to(stored) if value.is_floating_point() else value
             for key, value in compvis_state_dict(model_files.parts).items()}
    path = tmp_path / "half.safetensors"
    save_file(state, str(path))
    model = load_file_as_model(path, model_files.config_dir)  # run in float32: exact upcast
    assert_bit_identical(model, model_files.parts,
                         lambda tensor: tensor.to(stored).to(torch.float32))
    same = load_file_as_model(path, model_files.config_dir, dtype=stored)
    assert_bit_identical(same, model_files.parts, lambda tensor: tensor.to(stored))


def test_a_tensor_with_no_home_is_reported(model_files: ModelFiles, tmp_path: Path) -> None:  # noqa: F811
    state = compvis_state_dict(model_files.parts)
    state[UNET_PREFIX + "input_blocks.99.0.in_layers.0.weight"] = torch.zeros(1)
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match=r"1 UNet tensors do not fit .*input_blocks\.99"):
        load_file_as_model(path, model_files.config_dir)


def test_unsupported_unet_configs_are_refused(model_files: ModelFiles,  # noqa: F811
                                              tmp_path: Path) -> None:
    import shutil

    config = tmp_path / "config"
    shutil.copytree(model_files.config_dir, config)
    unet_config = config / "unet" / "config.json"
    data = json.loads(unet_config.read_text())
    data["addition_embed_type"] = "text_time"
    unet_config.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="addition_embed_type") as caught:
        load_file_as_model(model_files.safetensors, config)
    assert "\n" not in str(caught.value)


def test_shipped_sd15_configs_have_the_published_sizes() -> None:
    """Built on the meta device: only shapes, no memory and no weights."""
    unet_config = json.loads((SD15_CONFIG_DIR / "unet" / "config.json").read_text())
    vae_config = json.loads((SD15_CONFIG_DIR / "vae" / "config.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(SD15_CONFIG_DIR / "text_encoder")))
    counts = [sum(p.numel() for p in model.parameters()) for model in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]
    # diffusers' conversion finds a home for every SD 1.5 tensor of a CompVis file.
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    compvis = diffusers_to_compvis(unet.state_dict(), vae.state_dict(), text.state_dict(),
                                   unet_config, vae_config)
    assert sum(key.startswith(UNET_PREFIX) for key in compvis) == 686
    assert set(convert_ldm_unet_checkpoint(compvis, unet_config)) == set(unet.state_dict())
    assert set(convert_ldm_vae_checkpoint(compvis, vae_config)) == set(vae.state_dict())
