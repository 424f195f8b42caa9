"""Proof that our loop is diffusers' maths: same weights, prompt, seed, steps, guidance -> same
pixels (within 1/255) as StableDiffusionImg2ImgPipeline / StableDiffusionPipeline with LMS (and
Euler, DDIM, Heun, Euler a).  v-prediction models: test_vprediction.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import LMSDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

from core_fixtures import SIZE, generate, gradient_image, tiny_model, write_image
from dreamline.core import SCHEDULERS, Generator
from dreamline.request import Request

PROMPT = "a tree by a river"
SEED = 1234
STEPS = 10
CFG = 7.5


class RampedLMS(LMSDiscreteScheduler):
    """diffusers' LMS with k-diffusion's order ramp (the order grows from the first step run).

    Stock LMSDiscreteScheduler takes the order from the step's position in the full schedule, so
    in img2img (set_begin_index) its first step applies a 4th-order coefficient to the single
    derivative it holds.  dreamline ramps the order like k-diffusion and the reference program;
    from a full schedule (txt2img) the two are the same.
    """

    def step(self, model_output, timestep, sample, order=4, return_dict=True):  # noqa: ANN001
        order = min(order, len(self.derivatives) + 1)
        return super().step(model_output, timestep, sample, order=order, return_dict=return_dict)


def _parts(scheduler_class: type = LMSDiscreteScheduler) -> dict:
    model = tiny_model()
    return dict(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                unet=model.unet, scheduler=scheduler_class.from_config(model.scheduler_config),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _max_diff(ours, theirs) -> int:
    a = np.asarray(ours.convert("RGB"), dtype=np.int16)
    b = np.asarray(theirs.convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape
    return int(np.abs(a - b).max())


def _quiet(_: str) -> None:
    pass


@pytest.mark.parametrize("strength", [0.3, 0.75])
def test_img2img_equals_diffusers(tmp_path: Path, strength: float) -> None:
    """Equal to diffusers' img2img pipeline with LMS once its order ramps from the first step
    run; stock LMS differs only in that first-step order (see RampedLMS), and visibly."""
    init_path = write_image(tmp_path, 0)
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler="k_lms",
        init_img=str(init_path), strength=strength))[0]
    assert ours.info.steps_run == int(strength * STEPS)
    images = {}
    for scheduler_class in (RampedLMS, LMSDiscreteScheduler):
        pipe = StableDiffusionImg2ImgPipeline(**_parts(scheduler_class))
        pipe.set_progress_bar_config(disable=True)
        images[scheduler_class] = pipe(
            PROMPT, image=gradient_image(0), strength=strength, num_inference_steps=STEPS,
            guidance_scale=CFG, generator=torch.Generator().manual_seed(SEED)).images[0]
    assert _max_diff(ours.image, images[RampedLMS]) <= 1
    assert _max_diff(ours.image, images[LMSDiscreteScheduler]) > 1


def test_txt2img_equals_diffusers() -> None:
    pipe = StableDiffusionPipeline(**_parts())
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=CFG,
                  generator=torch.Generator().manual_seed(SEED)).images[0]
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, width=SIZE, height=SIZE))[0]
    assert ours.info.strength is None and ours.info.steps_run == STEPS
    assert _max_diff(ours.image, theirs) <= 1


def test_negative_prompt_equals_diffusers() -> None:
    """[words] become the unconditional prompt, like diffusers' negative_prompt."""
    pipe = StableDiffusionPipeline(**_parts())
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, negative_prompt="blurry", height=SIZE, width=SIZE,
                  num_inference_steps=4, guidance_scale=CFG,
                  generator=torch.Generator().manual_seed(SEED)).images[0]
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT + " [blurry]", steps=4, seed=SEED, cfg_scale=CFG))[0]
    assert _max_diff(ours.image, theirs) <= 1


@pytest.mark.parametrize("sampler", ["k_euler", "ddim", "k_heun", "k_euler_a"])
def test_other_samplers_equal_diffusers(tmp_path: Path, sampler: str) -> None:
    """txt2img and img2img (diffusers' own slice) with samplers other than LMS."""
    parts = _parts(SCHEDULERS[sampler])
    txt = StableDiffusionPipeline(**parts)
    txt.set_progress_bar_config(disable=True)
    theirs = txt(PROMPT, height=SIZE, width=SIZE, num_inference_steps=4, guidance_scale=CFG,
                 generator=torch.Generator().manual_seed(SEED)).images[0]
    gen = Generator(tiny_model())
    ours = generate(gen, Request(prompt=PROMPT, steps=4, seed=SEED, cfg_scale=CFG,
                                 sampler=sampler))[0]
    assert _max_diff(ours.image, theirs) <= 1
    img = StableDiffusionImg2ImgPipeline(**_parts(SCHEDULERS[sampler]))
    img.set_progress_bar_config(disable=True)
    theirs = img(PROMPT, image=gradient_image(0), strength=0.5, num_inference_steps=4,
                 guidance_scale=CFG, generator=torch.Generator().manual_seed(SEED)).images[0]
    ours = generate(gen, Request(prompt=PROMPT, steps=4, seed=SEED, cfg_scale=CFG,
                                 sampler=sampler, init_img=str(write_image(tmp_path, 0)),
                                 strength=0.5))[0]
    assert _max_diff(ours.image, theirs) <= 1
