"""The samplers added for A1111 files (DPM++ 2M, 2M SDE, SDE, 2S a, 3M SDE, UniPC, DEIS, LCM,
DDPM) and the schedule types: the same pixels as diffusers' own pipelines with that scheduler,
img2img sliced the same way, and every random draw from the request's seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

from core_fixtures import SIZE, generate, gradient_image, tiny_model, write_image
from dreamline import samplers as sampler_table
from dreamline.core import Generator
from dreamline.core.schedule import SCHEDULERS, brownian_seed, make_scheduler
from dreamline.request import Request, RequestError

PROMPT = "a tree by a river"
SEED = 1234
STEPS = 4
CFG = 7.5
LATENT_SHAPE = (1, 4, SIZE // 8, SIZE // 8)
NEW = ("k_dpmpp_2m", "k_dpmpp_2m_sde", "k_dpmpp_sde", "k_dpmpp_2s_a", "k_dpmpp_3m_sde",
       "unipc", "deis", "lcm", "ddpm")


def _scheduler(sampler: str, schedule: str, brownian: int | None) -> Any:
    """diffusers' scheduler as a user of its pipelines would build it from the table."""
    row = sampler_table.spec(sampler)
    options: dict[str, Any] = dict(row.options)
    if schedule != "model":
        options[f"use_{schedule}_sigmas"] = True
    if brownian is not None:
        options["noise_sampler_seed"] = brownian
    return SCHEDULERS[sampler].from_config(tiny_model().scheduler_config, **options)


def _parts(scheduler: Any) -> dict[str, Any]:
    model = tiny_model()
    return {"vae": model.vae, "text_encoder": model.text_encoder, "tokenizer": model.tokenizer,
            "unet": model.unet, "scheduler": scheduler, "safety_checker": None,
            "feature_extractor": None, "requires_safety_checker": False}


def _brownian(sampler: str, draws: int) -> int | None:
    """DPM++ SDE's tree seed: what the image's generator gives after its ``draws`` latent-sized
    normal draws (the noise; for img2img the init latent sample first)."""
    if sampler != "k_dpmpp_sde":
        return None
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(draws):
        torch.randn(LATENT_SHAPE, generator=generator)
    return brownian_seed(generator)


def _max_diff(ours: Any, theirs: Any) -> int:
    a = np.asarray(ours.convert("RGB"), dtype=np.int16)
    b = np.asarray(theirs.convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape
    return int(np.abs(a - b).max())


def _quiet(_line: str) -> None:
    pass


def _txt2img_theirs(sampler: str, schedule: str = "model") -> Any:
    pipe = StableDiffusionPipeline(**_parts(_scheduler(sampler, schedule, _brownian(sampler, 1))))
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=CFG,
                generator=torch.Generator().manual_seed(SEED)).images[0]


@pytest.mark.parametrize("sampler", NEW)
def test_txt2img_equals_diffusers(sampler: str) -> None:
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler))[0]
    assert (ours.info.sampler, ours.info.schedule) == (sampler, "model")
    assert _max_diff(ours.image, _txt2img_theirs(sampler)) <= 1


@pytest.mark.parametrize("schedule", ["karras", "exponential"])
@pytest.mark.parametrize("sampler", [name for name in NEW
                                     if sampler_table.spec(name).takes_schedules])
def test_txt2img_schedule_types_equal_diffusers(sampler: str, schedule: str) -> None:
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler,
        schedule=schedule))[0]
    assert ours.info.schedule == schedule
    assert _max_diff(ours.image, _txt2img_theirs(sampler, schedule)) <= 1


@pytest.mark.parametrize("sampler", NEW)
def test_img2img_equals_diffusers_slice(tmp_path: Path, sampler: str) -> None:
    """diffusers' img2img pipeline keeps the last floor(strength * steps) steps, as we do."""
    strength = 0.5
    ours = generate(Generator(tiny_model(), report=_quiet), Request(
        prompt=PROMPT, steps=STEPS, seed=SEED, cfg_scale=CFG, sampler=sampler,
        init_img=str(write_image(tmp_path, 0)), strength=strength))[0]
    assert (ours.info.start_step, ours.info.steps_run) == (2, 2)
    pipe = StableDiffusionImg2ImgPipeline(**_parts(
        _scheduler(sampler, "model", _brownian(sampler, 2))))
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, image=gradient_image(0), strength=strength, num_inference_steps=STEPS,
                  guidance_scale=CFG, generator=torch.Generator().manual_seed(SEED)).images[0]
    assert _max_diff(ours.image, theirs) <= 1


@pytest.mark.parametrize("sampler", [spec.name for spec in sampler_table.TABLE
                                     if spec.stochastic and spec.name in NEW])
def test_stochastic_samplers_draw_from_the_seed(sampler: str) -> None:
    gen = Generator(tiny_model(), report=_quiet)

    def image(seed: int) -> np.ndarray:
        request = Request(prompt=PROMPT, steps=STEPS, seed=seed, cfg_scale=CFG, sampler=sampler)
        return np.asarray(gen.generate(request)[0].image)

    first = image(SEED)
    torch.manual_seed(99)  # the global generator must not matter
    assert np.array_equal(first, image(SEED))
    assert not np.array_equal(first, image(SEED + 1))


def test_brownian_seed_comes_from_the_generator() -> None:
    assert brownian_seed(torch.Generator().manual_seed(5)) == \
        brownian_seed(torch.Generator().manual_seed(5))
    assert brownian_seed(torch.Generator().manual_seed(5)) != \
        brownian_seed(torch.Generator().manual_seed(6))
    assert brownian_seed(None) == 0


@pytest.mark.parametrize("sampler, schedule", [("lcm", "karras"), ("ddpm", "exponential"),
                                               ("ddim", "exponential")])
def test_schedule_types_need_a_sigma_schedule(sampler: str, schedule: str) -> None:
    refusal = (f"(?i)--schedule {schedule}: the {schedule} sigma schedule is for the samplers "
               f"that walk sigmas, not '{sampler}'")
    with pytest.raises(RequestError, match=refusal):
        Request(sampler=sampler, schedule=schedule).with_changes()
    with pytest.raises(RequestError, match=f"--schedule {schedule}: the {sampler} sampler"):
        make_scheduler(sampler, tiny_model().scheduler_config, schedule=schedule)


def test_exponential_sigmas_differ_from_karras_and_model() -> None:
    config = tiny_model().scheduler_config
    sigmas = {}
    for schedule in ("model", "karras", "exponential"):
        scheduler, name = make_scheduler("k_dpmpp_2m", config, schedule=schedule)
        scheduler.set_timesteps(10)
        assert name == schedule
        sigmas[schedule] = scheduler.sigmas
    assert not torch.allclose(sigmas["model"], sigmas["karras"])
    assert not torch.allclose(sigmas["exponential"], sigmas["karras"])


@pytest.mark.parametrize("sampler, schedule, label", [
    ("k_dpmpp_2m_sde", "exponential", "DPM++ 2M SDE Exponential"),
    ("k_dpmpp_2m", "model", "DPM++ 2M Uniform"),
    ("k_dpmpp_2m", "karras", "DPM++ 2M Karras"),
    ("unipc", "exponential", "UniPC Exponential"),
    ("lcm", "model", "LCM"),
])
def test_metadata_names_the_sampler_and_schedule_both_ways(sampler: str, schedule: str,
                                                           label: str) -> None:
    """sd-metadata keeps our names; A1111's text says the schedule where "Automatic" would
    pick another; both read back to the same sampler and schedule."""
    from dreamline.pngmeta import a1111, invokeai

    request = Request(prompt="p", steps=5, seed=3, sampler=sampler, schedule=schedule)
    info = {"sampler": sampler, "schedule": schedule, "width": SIZE, "height": SIZE}
    metadata = invokeai.sd_metadata(request, info)
    assert (metadata["image"]["sampler"], metadata["image"]["schedule"]) == (sampler, schedule)
    back = invokeai.sd_metadata_request("x.png", metadata)
    assert (back.sampler, back.sigma_schedule) == (sampler, schedule)
    text = a1111.a1111_parameters(request, info)
    assert f"Sampler: {label}," in text
    from dreamline.pngmeta.readers.a1111 import a1111_fetched

    back = a1111_fetched("x.png", a1111.parse_a1111(text)).request
    assert (back.sampler, back.sigma_schedule) == (sampler, schedule)
