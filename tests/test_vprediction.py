"""v-prediction models: the UNet predicts v, and every sampler reads it so.

The same tiny weights, read as a v-prediction model, must give diffusers' own pipelines' pixels
when their scheduler has ``prediction_type="v_prediction"``: txt2img with every sampler, img2img
with the samplers whose img2img slice is diffusers' own (k_lms ramps its order and PLMS rebuilds
its slice, see test_equivalence.py and core/schedule.py).  PLMS turns each call's v into noise
before combining steps, unlike stock PNDM (see PerCallPLMS).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import PNDMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

from core_fixtures import SIZE, gradient_image, prepared, tiny_model, write_image
from dreamline import samplers as sampler_table
from dreamline.core import SCHEDULERS, Generator, Schedule, make_scheduler, sample
from dreamline.core.schedule import brownian_seed
from dreamline.models.types import LoadedModel
from dreamline.request import SAMPLERS, Request, steps_to_run

PROMPT = "a tree by a river"
SEED = 1234
STEPS = 4
CFG = 7.5
V = "v_prediction"


class PerCallPLMS(PNDMScheduler):
    """diffusers' PLMS for a v model with each call's v turned into noise at its own sample and
    timestep before the multistep combination (CompVis' PLMS sampler does the same).  Stock
    PNDM with ``prediction_type="v_prediction"`` combines raw v outputs of different steps and
    converts the sum once, which a perfect v predictor shows is wrong (see the last test)."""

    def step(self, model_output: torch.Tensor, timestep: torch.Tensor,  # type: ignore[override]
             sample: torch.Tensor, return_dict: bool = True) -> Any:
        alpha = self.alphas_cumprod[int(timestep)]
        noise = alpha**0.5 * model_output + (1 - alpha) ** 0.5 * sample
        return super().step(noise, timestep, sample, return_dict=return_dict)


def _v_model() -> LoadedModel:
    return dataclasses.replace(tiny_model(), prediction_type=V)


def _parts(sampler: str, prediction_type: str = V) -> dict:
    model = tiny_model()
    if sampler == "plms":  # epsilon inside: PerCallPLMS hands it noise
        scheduler = PerCallPLMS.from_config(model.scheduler_config, skip_prk_steps=True)
    else:  # the table's options; DPM++ SDE's Brownian tree seeded as our generator seeds it
        options = dict(sampler_table.spec(sampler).options)
        if sampler == "k_dpmpp_sde":
            generator = torch.Generator().manual_seed(SEED)
            torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=generator)  # the noise
            options["noise_sampler_seed"] = brownian_seed(generator)
        scheduler = SCHEDULERS[sampler].from_config(model.scheduler_config,
                                                    prediction_type=prediction_type, **options)
    return {"vae": model.vae, "text_encoder": model.text_encoder, "tokenizer": model.tokenizer,
            "unet": model.unet, "scheduler": scheduler, "safety_checker": None,
            "feature_extractor": None, "requires_safety_checker": False}


def _max_diff(ours, theirs) -> int:
    a = np.asarray(ours.convert("RGB"), dtype=np.int16)
    b = np.asarray(theirs.convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape
    return int(np.abs(a - b).max())


def _txt2img_pipeline(sampler: str):
    pipe = StableDiffusionPipeline(**_parts(sampler))
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=CFG,
                generator=torch.Generator().manual_seed(SEED)).images[0]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_txt2img_equals_diffusers_v_prediction(sampler: str) -> None:
    theirs = _txt2img_pipeline(sampler)
    ours = Generator(_v_model()).generate(Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler))[0]
    assert ours.info.prediction_type == V
    assert _max_diff(ours.image, theirs) <= 1
    if sampler in ("k_euler", "ddim"):  # read as an epsilon model, the same weights differ
        plain = Generator(tiny_model()).generate(Request(
            prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler))[0]
        assert plain.info.prediction_type == "epsilon"
        assert _max_diff(plain.image, theirs) > 1


@pytest.mark.parametrize("sampler", ["k_euler", "ddim", "k_heun", "k_dpm_2", "k_euler_a"])
def test_img2img_equals_diffusers_v_prediction(tmp_path: Path, sampler: str) -> None:
    strength = 0.75
    request = Request(prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler,
                      init_img=str(write_image(tmp_path, 0)), strength=strength)
    ours = Generator(_v_model()).generate(request, init=prepared(request))[0]
    assert ours.info.steps_run == 3 and ours.info.prediction_type == V
    pipe = StableDiffusionImg2ImgPipeline(**_parts(sampler))
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, image=gradient_image(0), strength=strength, num_inference_steps=STEPS,
                  guidance_scale=CFG, generator=torch.Generator().manual_seed(SEED)).images[0]
    assert _max_diff(ours.image, theirs) <= 1


def test_unknown_prediction_type_is_refused() -> None:
    model = dataclasses.replace(tiny_model(), prediction_type="sample")
    with pytest.raises(ValueError, match="prediction type 'sample'; expected one of epsilon"):
        Generator(model).generate(Request(prompt=PROMPT, steps=1, seed=1))


@pytest.mark.parametrize("sampler", ["ddim", "plms", "k_lms", "k_euler", "k_heun", "k_dpmpp_2m",
                                     "unipc", "deis"])
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_a_perfect_v_predictor_lands_on_the_init_latent(sampler: str, strength: float) -> None:
    """Told the true v (``sqrt(alpha_t) * noise - sqrt(1 - alpha_t) * z0``) at every call, the
    loop over a v-prediction schedule ends where the noise-free latent is, from txt2img's and
    img2img's start points alike.  alpha_t is alphas_cumprod[t] for DDIM/PLMS and
    1 / (sigma**2 + 1) for the k samplers."""
    steps = 6
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn((1, 4, 8, 8), generator=generator)
    noise = torch.randn((1, 4, 8, 8), generator=generator)
    scheduler, _ = make_scheduler(sampler, tiny_model().scheduler_config, prediction_type=V)
    alphas = scheduler.alphas_cumprod
    schedule = Schedule.full(scheduler, sampler, steps)
    if strength < 1.0:
        schedule = schedule.sliced(steps_to_run(strength, steps))
    x = schedule.noise_init(z0, noise)

    def predict_v(_x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = schedule.input_sigma()  # the level of the sample at this call
        alpha = alphas[int(t)] if sigma is None else 1 / (sigma**2 + 1)
        return alpha**0.5 * noise - (1 - alpha) ** 0.5 * z0

    out = sample(predict_v, x, schedule)
    if schedule.uses_sigmas:
        expected = z0
    elif sampler not in ("ddim", "plms"):  # VP sigmas end at their last (0; DEIS's is not)
        last = float(scheduler.sigmas[-1])
        expected = (z0 + last * noise) / (last**2 + 1) ** 0.5
    else:  # DDIM/PLMS end at the "final" alpha (alphas_cumprod[0] with set_alpha_to_one False)
        final = float(scheduler.final_alpha_cumprod)
        expected = final**0.5 * z0 + (1 - final) ** 0.5 * noise
    assert torch.allclose(out, expected, atol=1e-4), f"off by {float((out - expected).abs().max())}"


def test_stock_pndm_v_prediction_misses_where_our_plms_lands() -> None:
    """Why PLMS converts per call: with a perfect v predictor, diffusers' own v-prediction PNDM
    leaves noise behind (this fails, and the workaround can go, if diffusers fixes it)."""
    steps = 6
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn((1, 4, 8, 8), generator=generator)
    noise = torch.randn((1, 4, 8, 8), generator=generator)
    stock = PNDMScheduler.from_config(tiny_model().scheduler_config, skip_prk_steps=True,
                                      prediction_type=V)
    stock.set_timesteps(steps)
    x = stock.add_noise(z0, noise, stock.timesteps[:1])
    for t in stock.timesteps:
        alpha = stock.alphas_cumprod[int(t)]
        x = stock.step(alpha**0.5 * noise - (1 - alpha) ** 0.5 * z0, t, x).prev_sample
    final = float(stock.final_alpha_cumprod)
    expected = final**0.5 * z0 + (1 - final) ** 0.5 * noise
    assert float((x - expected).abs().max()) > 0.1
