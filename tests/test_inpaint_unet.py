"""SD 1.x inpainting checkpoints (9-channel UNet): loaded from a diffusers folder and a CompVis
file, used for -M / transparency inpainting, img2img and txt2img, equal to diffusers'
StableDiffusionInpaintPipeline, kept pixels pasted back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from core_fixtures import SIZE, gradient_image, prepared, write_image
from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
from model_files import compvis_state_dict, save_diffusers, tiny_config_dir
from PIL import Image
from safetensors.torch import save_file
from tiny_models import SCHEDULER_CONFIG, tiny_components

from dreamline.core import SCHEDULERS, Generator
from dreamline.errors import ModelError
from dreamline.images import paste_kept
from dreamline.models.loader import load_model
from dreamline.models.registry import ModelRegistry
from dreamline.models.types import LoadedModel
from dreamline.request import Request

PROMPT = "a red door"


def inpaint_parts(seed: int = 0) -> dict:
    """The tiny model with a 9-channel UNet (weights from ``seed``)."""
    parts = tiny_components(seed)
    config = dict(parts["unet"].config)
    config["in_channels"] = 9
    torch.manual_seed(seed + 100)
    parts["unet"] = UNet2DConditionModel.from_config(config).eval()
    return parts


def as_model(parts: dict) -> LoadedModel:
    return LoadedModel(name="tiny-inpaint", path=Path("tiny-inpaint"), short_hash="9999999999",
                       unet=parts["unet"], vae=parts["vae"], text_encoder=parts["text_encoder"],
                       tokenizer=parts["tokenizer"], scheduler_config=dict(SCHEDULER_CONFIG),
                       device=torch.device("cpu"), dtype=torch.float32, default_width=SIZE,
                       default_height=SIZE)


def mask_files(tmp_path: Path) -> tuple[Path, Image.Image]:
    """Our -M mask (black = repaint: the right half) and diffusers' (white = repaint)."""
    keep = np.full((SIZE, SIZE), 255, np.uint8)
    keep[:, SIZE // 2:] = 0
    path = tmp_path / "mask.png"
    Image.fromarray(keep, mode="L").save(path)
    return path, Image.fromarray(255 - keep, mode="L")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _pipe(parts: dict, sampler: str) -> StableDiffusionInpaintPipeline:
    pipe = StableDiffusionInpaintPipeline(
        vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
        unet=parts["unet"], scheduler=SCHEDULERS[sampler].from_config(SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("sampler, strength", [("k_lms", 1.0), ("k_euler", 0.75),
                                               ("ddim", 0.5)])
def test_mask_inpainting_equals_diffusers(tmp_path: Path, sampler: str, strength: float) -> None:
    parts = inpaint_parts()
    mask_path, their_mask = mask_files(tmp_path)
    request = Request(prompt=PROMPT, steps=6, seed=21, sampler=sampler, strength=strength,
                      init_img=str(write_image(tmp_path, 0)), init_mask=str(mask_path))
    init = prepared(request)
    ours = Generator(as_model(parts)).generate(request, init=init)[0].image
    theirs = _pipe(parts, sampler)(
        PROMPT, image=gradient_image(0), mask_image=their_mask, height=SIZE, width=SIZE,
        strength=strength, num_inference_steps=6, guidance_scale=7.5,
        generator=torch.Generator().manual_seed(21)).images[0]
    assert init is not None
    assert np.abs(_pixels(ours) - _pixels(paste_kept(theirs, init.image))).max() <= 1
    # kept pixels pasted back exactly; the repainted half changed
    original = _pixels(gradient_image(0))
    assert np.array_equal(_pixels(ours)[:, :SIZE // 2], original[:, :SIZE // 2])
    assert np.abs(_pixels(ours)[:, SIZE // 2:] - original[:, SIZE // 2:]).max() > 10


def test_txt2img_and_img2img_are_a_full_mask(tmp_path: Path) -> None:
    """As diffusers' inpainting pipeline with a white (repaint-all) mask."""
    parts = inpaint_parts()
    gen = Generator(as_model(parts))
    white = Image.new("L", (SIZE, SIZE), 255)
    txt = gen.generate(Request(prompt=PROMPT, steps=5, seed=3, width=SIZE, height=SIZE))[0]
    theirs = _pipe(parts, "k_lms")(
        PROMPT, image=Image.new("RGB", (SIZE, SIZE)), mask_image=white,
        height=SIZE, width=SIZE, strength=1.0, num_inference_steps=5, guidance_scale=7.5,
        generator=torch.Generator().manual_seed(3)).images[0]
    assert np.abs(_pixels(txt.image) - _pixels(theirs)).max() <= 1
    request = Request(prompt=PROMPT, steps=6, seed=4, sampler="ddim", strength=0.5,
                      init_img=str(write_image(tmp_path, 1)))
    ours = gen.generate(request, init=prepared(request))[0]
    theirs = _pipe(parts, "ddim")(
        PROMPT, image=gradient_image(1), mask_image=white, height=SIZE, width=SIZE,
        strength=0.5, num_inference_steps=6, guidance_scale=7.5,
        generator=torch.Generator().manual_seed(4)).images[0]
    assert np.abs(_pixels(ours.image) - _pixels(theirs)).max() <= 1


def test_transparency_inpainting_keeps_opaque_pixels(tmp_path: Path) -> None:
    rgba = gradient_image(0).convert("RGBA")
    alpha = np.full((SIZE, SIZE), 255, np.uint8)
    alpha[SIZE // 4:, SIZE // 4:] = 0
    rgba.putalpha(Image.fromarray(alpha, mode="L"))
    path = tmp_path / "holed.png"
    rgba.save(path)
    request = Request(prompt=PROMPT, steps=4, seed=5, init_img=str(path), strength=1.0)
    image = Generator(as_model(inpaint_parts())).generate(request, init=prepared(request))[0]
    got = _pixels(image.image)
    original = _pixels(gradient_image(0))
    assert np.array_equal(got[:SIZE // 4], original[:SIZE // 4])
    assert np.abs(got[SIZE // 4:, SIZE // 4:] - original[SIZE // 4:, SIZE // 4:]).max() > 10


def test_loads_from_a_folder_and_a_single_file(tmp_path: Path) -> None:
    parts = inpaint_parts()
    folder = save_diffusers(tmp_path / "inpaint-folder", parts=parts)
    config = tiny_config_dir(tmp_path / "config")
    unet_config = config / "unet" / "config.json"
    data = json.loads(unet_config.read_text())
    data["in_channels"] = 9
    unet_config.write_text(json.dumps(data))
    single = tmp_path / "inpaint.safetensors"
    save_file(compvis_state_dict(parts), str(single))
    (tmp_path / "models.yaml").write_text(
        f"folder:\n  path: {folder.name}\n  default: true\n"
        f"single:\n  path: {single.name}\n  config: config\n", encoding="utf-8")
    registry = ModelRegistry.load(tmp_path / "models.yaml")
    expected = parts["unet"].state_dict()
    for name in ("folder", "single"):
        model = load_model(name, registry=registry, device="cpu", dtype=torch.float32,
                           report=lambda _line: None)
        got = model.unet.state_dict()
        assert model.unet.config.in_channels == 9
        assert all(torch.equal(got[key], expected[key]) for key in expected), name


def test_single_file_without_config_gets_the_shipped_inpainting_config(tmp_path: Path) -> None:
    """A 9-channel file given by path alone is built from data/sd15-inpainting (SD 1.5 sizes:
    our tiny file does not fit them, and the message says which config was tried)."""
    single = tmp_path / "tiny-inpaint.safetensors"
    save_file(compvis_state_dict(inpaint_parts()), str(single))
    (tmp_path / "models.yaml").write_text("other:\n  path: nowhere.safetensors\n",
                                          encoding="utf-8")
    lines: list[str] = []
    with pytest.raises(ModelError) as info:
        load_model(str(single), registry=ModelRegistry.load(tmp_path / "models.yaml"),
                   device="cpu", dtype=torch.float32, report=lines.append)
    assert "sd15-inpainting" in str(info.value)
    assert any("inpainting model (9-channel UNet)" in line for line in lines)
