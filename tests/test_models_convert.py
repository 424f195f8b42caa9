"""CompVis <-> diffusers key conversion, checked against diffusers' own single-file loader."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from dreamline.models.convert import (
    TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX, ConversionError, compvis_to_diffusers,
    diffusers_to_compvis, sd1_problem, unet_pairs,
)
from dreamline.models.loader import SD15_CONFIG_DIR
from model_files import ModelFiles, compvis_state_dict, model_files  # noqa: F401


def without_position_ids(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state.items() if not key.endswith("position_ids")}


def test_round_trip_gives_back_every_tensor(model_files: ModelFiles) -> None:  # noqa: F811
    parts = model_files.parts
    compvis = compvis_state_dict(parts)
    back = compvis_to_diffusers(compvis, parts["unet"].config, parts["vae"].config)
    for name, converted in (("unet", back.unet), ("vae", back.vae),
                            ("text_encoder", back.text_encoder)):
        original = without_position_ids(parts[name].state_dict())
        assert set(converted) == set(original), name
        for key, tensor in original.items():
            assert torch.equal(converted[key], tensor), f"{name}: {key}"
    assert back.ignored == []


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
    """The independent check: diffusers' conversion of our file gives the original weights."""
    for part, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        loaded = cls.from_single_file(str(model_files.safetensors),
                                      config=str(model_files.config_dir), subfolder=part,
                                      local_files_only=True)
        original = model_files.parts[part].state_dict()
        got = loaded.state_dict()
        assert set(got) == set(original), part
        for key, tensor in original.items():
            assert torch.equal(got[key], tensor), f"{part}: {key}"


def test_old_checkpoints_without_text_model_level_convert(model_files: ModelFiles) -> None:  # noqa: F811
    parts = model_files.parts
    old = {key.replace(TEXT_PREFIX, "cond_stage_model.transformer."): value
           for key, value in compvis_state_dict(parts).items()}
    old["cond_stage_model.transformer.embeddings.position_ids"] = torch.arange(77)[None]
    old["model_ema.decay"] = torch.tensor(0.999)
    old["alphas_cumprod"] = torch.ones(1000)
    back = compvis_to_diffusers(old, parts["unet"].config, parts["vae"].config)
    assert set(back.text_encoder) == set(without_position_ids(parts["text_encoder"].state_dict()))
    assert sorted(back.ignored) == ["alphas_cumprod",
                                    "cond_stage_model.transformer.embeddings.position_ids",
                                    "model_ema.decay"]


def test_a_tensor_with_no_home_is_reported(model_files: ModelFiles) -> None:  # noqa: F811
    parts = model_files.parts
    state = compvis_state_dict(parts)
    state[UNET_PREFIX + "input_blocks.99.0.in_layers.0.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"1 UNet tensors do not fit .*input_blocks\.99"):
        compvis_to_diffusers(state, parts["unet"].config, parts["vae"].config)


def test_unsupported_unet_configs_are_refused(model_files: ModelFiles) -> None:  # noqa: F811
    config = dict(model_files.parts["unet"].config)
    config["addition_embed_type"] = "text_time"
    with pytest.raises(ConversionError, match="addition_embed_type"):
        unet_pairs(config)


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
    # Every SD 1.5 tensor has a CompVis name, and back.
    compvis = diffusers_to_compvis(unet.state_dict(), vae.state_dict(), text.state_dict(),
                                   unet_config, vae_config)
    back = compvis_to_diffusers(compvis, unet_config, vae_config)
    assert set(back.unet) == set(unet.state_dict())
    assert set(back.vae) == set(vae.state_dict())
    assert sum(key.startswith(UNET_PREFIX) for key in compvis) == 686


@pytest.mark.parametrize("keys, fragment", [
    ([], "holds no tensors"),
    (["conditioner.embedders.0.transformer.x", "model.diffusion_model.x"], "SDXL"),
    (["cond_stage_model.model.token_embedding", "model.diffusion_model.x",
      "first_stage_model.x"], "SD 2.x"),
    (["down_blocks.0.resnets.0.conv1.weight"], "single diffusers part"),
    (["lora_unet_down_blocks_0.alpha"], "LoRA"),
    (["model.diffusion_model.x", "first_stage_model.x"],
     "no cond_stage_model.transformer.* (CLIP text encoder) keys"),
    (["weight", "bias"], "no model.diffusion_model.* (UNet), no first_stage_model.* (VAE)"),
])
def test_non_sd1_key_sets_are_explained(keys: list[str], fragment: str) -> None:
    problem = sd1_problem(keys)
    assert problem is not None and fragment in problem


def test_sd1_key_set_passes() -> None:
    assert sd1_problem(["model.diffusion_model.a", "first_stage_model.b",
                        "cond_stage_model.transformer.text_model.c"]) is None
