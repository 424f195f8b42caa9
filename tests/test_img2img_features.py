"""img2img in full, at the core level: variations, inpainting, strength, seamless, weighted
prompts and the progress hooks, with every sampler.

Tiny random-weight model, 64x64 (8x8 latents), a few steps: these tests check the mechanics
(what is kept, what is reproduced, which noise level goes where), not the look of the pictures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from core_fixtures import SIZE, generate, gradient_image, tiny_model, write_image
from dreamline.core import (
    Generator,
    GeneratedImage,
    StepInfo,
    latents_to_preview_rgb,
    make_scheduler,
    sample,
    steps_to_run,
)
from dreamline.core import latents as latent_ops
from dreamline.core.noise import PARALLEL_COS, draw_noise, seed_noise, seeded_generator, slerp
from dreamline.core.schedule import SIGMA_SAMPLERS, Schedule
from dreamline.images import load_init_image, mask_to_latent
from dreamline.request import SAMPLERS, Request

STEPS = 4
DETERMINISTIC = ("ddim", "plms", "k_lms", "k_euler", "k_heun", "k_dpm_2")


# ------------------------------------------------------------------------------ helpers


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return bool(np.array_equal(_pixels(a), _pixels(b)))


class Lines(list[str]):
    """The generator's report lines, cleared between tests that share the generator."""


@pytest.fixture(scope="module")
def lines() -> Lines:
    return Lines()


@pytest.fixture(scope="module")
def gen(lines: Lines) -> Generator:
    return Generator(tiny_model(), report=lines.append)


@pytest.fixture(autouse=True)
def _fresh_lines(lines: Lines) -> Iterator[None]:
    lines.clear()
    yield


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Init images and masks on disk, written once for the whole module."""
    folder = tmp_path_factory.mktemp("pictures")
    found = {"init": str(write_image(folder, 0))}

    hole = gradient_image(0).convert("RGBA")
    alpha = np.full((SIZE, SIZE), 255, dtype=np.uint8)
    alpha[:, SIZE // 2:] = 0  # right half transparent: repaint it
    hole.putalpha(Image.fromarray(alpha))
    found["hole"] = str(folder / "hole.png")
    hole.save(found["hole"])

    # An L mask at half the image's size: black (repaint) bottom half, white (keep) top half.
    small = np.full((SIZE // 2, SIZE // 2), 255, dtype=np.uint8)
    small[SIZE // 4:, :] = 0
    found["half_mask"] = str(folder / "half-mask.png")
    Image.fromarray(small, mode="L").save(found["half_mask"])

    for name, value in (("white_mask", 255), ("black_mask", 0)):
        found[name] = str(folder / f"{name}.png")
        Image.new("L", (SIZE, SIZE), value).save(found[name])
    return found


def _run(gen: Generator, on_step: Callable[[StepInfo], None] | None = None,
         **fields: object) -> list[GeneratedImage]:
    fields.setdefault("steps", STEPS)
    fields.setdefault("prompt", "a lighthouse")
    return generate(gen, Request(**fields), on_step=on_step)


def _one(gen: Generator, **fields: object) -> GeneratedImage:
    return _run(gen, **fields)[0]


def vars_of(request: Request) -> dict[str, object]:
    """A request's fields as keywords, so ``_one`` rebuilds exactly it."""
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def _img2img(pictures: dict[str, str]) -> dict[str, object]:
    return {"init_img": pictures["init"], "strength": 0.75}


class UNetInputs:
    """Records (latent input, timestep) of every UNet call while active."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, float]] = []

    def __enter__(self) -> UNetInputs:
        def hook(_module: object, args: tuple, kwargs: dict) -> None:
            sample_in, timestep = args[0], args[1]
            self.calls.append((sample_in[:1].detach().clone(), float(timestep)))

        self._handle = tiny_model().unet.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._handle.remove()


def _init_latents_and_noise(image: Image.Image, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What the generator draws for img2img, in its documented order: latent sample, then noise."""
    model = tiny_model()
    generator = seeded_generator(seed)
    with torch.inference_mode():
        dist = latent_ops.encode(model.vae, image)
    init_latents = dist.sample(generator, model.scaling_factor)
    noise = draw_noise(generator, init_latents.shape, "cpu", torch.float32)
    return init_latents, noise


# ------------------------------------------------------------------------------ 1. variations


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
def test_variations_reproduce_and_zero_is_plain(gen: Generator, pictures: dict[str, str],
                                                sampler: str, mode: str) -> None:
    extra = _img2img(pictures) if mode == "img2img" else {}
    common = dict(seed=21, sampler=sampler, steps=3, **extra)
    plain = _one(gen, **common)
    assert _same(_one(gen, variation_amount=0.0, **common).image, plain.image)

    variations = _run(gen, variation_amount=0.4, iterations=2, **common)
    assert len({v.seed for v in variations}) == 2
    for variation in variations:
        request = variation.request
        assert (request.seed, request.iterations, request.variation_amount) == (21, 1, 0.0)
        assert request.with_variations == ((variation.seed, 0.4),)
        assert variation.info.variation_seed == variation.seed
        assert not _same(variation.image, plain.image)
        assert _same(_one(gen, **vars_of(request)).image, variation.image)


@pytest.mark.parametrize("extra", [{}, {"init_img": "init", "strength": 0.6}],
                         ids=["txt2img", "img2img"])
def test_iterations_seeds_are_reproducible(gen: Generator, pictures: dict[str, str],
                                           extra: dict[str, object]) -> None:
    if "init_img" in extra:
        extra = {**extra, "init_img": pictures["init"]}
    first = _run(gen, seed=5, iterations=3, sampler="k_euler_a", **extra)
    again = _run(gen, seed=5, iterations=3, sampler="k_euler_a", **extra)
    assert [r.seed for r in first] == [r.seed for r in again]
    assert len({r.seed for r in first}) == 3 and first[0].seed == 5
    for a, b in zip(first, again, strict=False):
        assert _same(a.image, b.image)
        assert a.request.seed == a.seed and a.request.iterations == 1
    assert not _same(first[0].image, first[1].image)
    # Image k alone, from its returned request, is image k of the batch.
    assert _same(_one(gen, **vars_of(first[2].request)).image, first[2].image)


def _noises() -> tuple[torch.Tensor, torch.Tensor]:
    return (seed_noise(1, (1, 4, 8, 8), "cpu", torch.float32),
            seed_noise(2, (1, 4, 8, 8), "cpu", torch.float32))


def test_slerp_ends_are_exact() -> None:
    a, b = _noises()
    assert torch.equal(slerp(0.0, a, b), a)
    assert torch.equal(slerp(1.0, a, b), b)


def test_slerp_keeps_the_norm_where_a_straight_line_shrinks_it() -> None:
    a, b = _noises()
    b = b * (a.norm() / b.norm())  # same radius: slerp must stay on that sphere
    for amount in (0.1, 0.25, 0.5, 0.9):
        mixed = slerp(amount, a, b)
        assert float(mixed.norm()) == pytest.approx(float(a.norm()), rel=1e-5)
    linear = 0.5 * a + 0.5 * b
    assert float(linear.norm()) < 0.8 * float(a.norm())  # why slerp: lerp washes noise out
    # The angle moves in proportion to the amount.
    cos_total = float((a * b).sum() / (a.norm() * b.norm()))
    quarter = slerp(0.25, a, b)
    cos_quarter = float((a * quarter).sum() / (a.norm() * quarter.norm()))
    assert np.arccos(cos_quarter) == pytest.approx(0.25 * np.arccos(cos_total), rel=1e-4)


def test_slerp_parallel_and_antiparallel_are_linear_and_finite() -> None:
    a, _ = _noises()
    for other in (a.clone(), 2.0 * a, -a):
        for amount in (0.3, 0.5):
            mixed = slerp(amount, a, other)
            assert torch.isfinite(mixed).all()
            expected = ((1 - amount) * a.double() + amount * other.double()).float()
            assert torch.allclose(mixed, expected, atol=1e-6)
    assert torch.equal(slerp(0.5, a, a), a)


def test_slerp_nearly_parallel_is_linear_just_past_the_threshold() -> None:
    a, b = _noises()
    # Mix in just enough of b that |cos| lies on either side of the threshold.
    orthogonal = b - (a * b).sum() / (a * a).sum() * a
    orthogonal = orthogonal * (a.norm() / orthogonal.norm())

    def at_cos(cos: float) -> torch.Tensor:
        return cos * a + float(np.sqrt(1 - cos * cos)) * orthogonal

    near = at_cos(PARALLEL_COS + 2e-4)
    linear = (0.5 * a.double() + 0.5 * near.double()).float()
    assert torch.allclose(slerp(0.5, a, near), linear, atol=1e-6)
    apart = at_cos(PARALLEL_COS - 2e-3)
    assert not torch.allclose(slerp(0.5, a, apart), 0.5 * a + 0.5 * apart, atol=1e-6)
    assert float(slerp(0.5, a, apart).norm()) == pytest.approx(float(a.norm()), rel=1e-5)


# ------------------------------------------------------------------------------ 2. inpainting


def _repainted_and_kept(result: GeneratedImage, keep: np.ndarray) -> tuple[bool, bool]:
    """(every kept pixel equals the input, some repainted pixel changed)."""
    out, src = _pixels(result.image), _pixels(gradient_image(0))
    kept = keep.astype(bool)
    return (bool(np.array_equal(out[kept], src[kept])),
            bool(np.any(out[~kept] != src[~kept])))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_inpainting_keeps_exactly_and_repaints_with_every_sampler(
        gen: Generator, lines: Lines, pictures: dict[str, str], sampler: str) -> None:
    keep = np.zeros((SIZE, SIZE), dtype=np.float32)
    keep[:, :SIZE // 2] = 1.0  # opaque left half
    result = _one(gen, seed=8, sampler=sampler, init_img=pictures["hole"], strength=0.75)
    assert _repainted_and_kept(result, keep) == (True, True)

    inverted = _one(gen, seed=8, sampler=sampler, init_img=pictures["hole"], strength=0.75,
                    invert_mask=True)
    assert _repainted_and_kept(inverted, 1.0 - keep) == (True, True)
    assert any("inverted" in line for line in lines)


V_MODEL_SAMPLERS = ("ddim", "plms", "k_euler", "k_dpm_2_a")


@pytest.mark.parametrize(("sampler", "prediction_type"),
                         [(name, "epsilon") for name in SAMPLERS]
                         + [(name, "v_prediction") for name in V_MODEL_SAMPLERS])
def test_kept_region_is_the_init_latent_at_the_noise_level_of_each_unet_call(
        gen: Generator, pictures: dict[str, str], sampler: str, prediction_type: str) -> None:
    """Before every UNet call the kept latent cells are ``a * z0 + b * noise`` with the level
    the scheduler scaled the input for: ``a**2 + b**2 == 1`` (k samplers scale by
    1/sqrt(sigma**2 + 1); DDIM/PLMS mix sqrt(alpha) and sqrt(1 - alpha)), and for DDIM/PLMS
    ``a**2`` is alpha_cumprod at the timestep the UNet is given.  The noising is the forward
    process, the same for a v-prediction model."""
    seed = 13
    if prediction_type != "epsilon":
        gen = Generator(dataclasses.replace(tiny_model(), prediction_type=prediction_type))
    with UNetInputs() as seen:
        _one(gen, seed=seed, sampler=sampler, init_img=pictures["hole"], strength=0.75,
             cfg_scale=1.0)
    init_latents, noise = _init_latents_and_noise(gradient_image(0), seed)
    pixel_keep = np.zeros((SIZE, SIZE), dtype=np.float32)
    pixel_keep[:, :SIZE // 2] = 1.0
    kept = torch.from_numpy(mask_to_latent(pixel_keep, 8)).bool().expand_as(init_latents)
    design = torch.stack([init_latents[kept], noise[kept]], dim=1).double()
    scheduler, _ = make_scheduler(sampler, tiny_model().scheduler_config)
    assert len(seen.calls) >= steps_to_run(0.75, STEPS)
    for number, (model_input, timestep) in enumerate(seen.calls):
        target = model_input[kept].double()
        solution = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
        a, b = float(solution[0]), float(solution[1])
        fitted = design @ solution
        assert float((fitted - target).abs().max()) < 1e-4, f"call {number}: not a*z0 + b*noise"
        assert a * a + b * b == pytest.approx(1.0, abs=1e-4), (
            f"{sampler} call {number}: kept region at another noise level than the input scale")
        if sampler not in SIGMA_SAMPLERS:
            alpha = float(scheduler.alphas_cumprod[int(timestep)])
            assert a * a == pytest.approx(alpha, abs=1e-4), f"{sampler} call {number} t={timestep}"


def test_mask_file_gray_smaller_than_the_image_is_resized(
        gen: Generator, lines: Lines, pictures: dict[str, str]) -> None:
    result = _one(gen, seed=3, init_img=pictures["init"], init_mask=pictures["half_mask"],
                  strength=0.75)
    keep = load_init_image(pictures["init"], fit_box=None, multiple=64,
                           mask_path=pictures["half_mask"]).mask
    assert keep is not None and keep.shape == (SIZE, SIZE)
    # The white top half of the 32x32 mask, scaled up with the image; only the rows blending
    # black and white at the seam are repainted as well.
    assert keep[:SIZE // 2 - 2].all() and not keep[SIZE // 2:].any()
    assert _repainted_and_kept(result, keep) == (True, True)
    assert any("resized with the image" in line for line in lines)

    inverted = _one(gen, seed=3, init_img=pictures["init"], init_mask=pictures["half_mask"],
                    strength=0.75, invert_mask=True)
    assert _repainted_and_kept(inverted, 1.0 - keep) == (True, True)


@pytest.mark.parametrize(("mask", "said"), [("white_mask", "keeps every pixel"),
                                            ("black_mask", "repaints every pixel")])
def test_empty_or_full_mask_is_explained_and_runs_plain_img2img(
        gen: Generator, lines: Lines, pictures: dict[str, str], mask: str, said: str) -> None:
    masked = _one(gen, seed=4, init_img=pictures["init"], init_mask=pictures[mask],
                  strength=0.5)
    assert any(said in line for line in lines)
    plain = _one(gen, seed=4, init_img=pictures["init"], strength=0.5)
    assert _same(masked.image, plain.image)


# ------------------------------------------------------------------------------ 3. strength


def test_lower_strength_ends_closer_to_the_init_latent(gen: Generator,
                                                      pictures: dict[str, str]) -> None:
    """Measured in latent space: the random tiny VAE decodes every latent about equally far from
    the init picture (mean pixel distance ~80 at any strength), so pixels cannot show it."""

    def distance(strength: float, seed: int) -> float:
        seen: list[StepInfo] = []
        _one(gen, seed=seed, steps=10, init_img=pictures["init"], strength=strength,
             on_step=seen.append)
        init_latents, _noise = _init_latents_and_noise(gradient_image(0), seed)
        return float((seen[-1].latents - init_latents).abs().mean())

    for seed in (1, 2, 3):
        low, middle, high = distance(0.2, seed), distance(0.5, seed), distance(0.9, seed)
        assert low < middle < high, (seed, low, middle, high)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_img2img_starts_from_the_init_latent_noised_to_the_first_step(
        gen: Generator, pictures: dict[str, str], sampler: str) -> None:
    """k samplers start at z0 + noise * sigma_start; the others at add_noise(z0, t_start)."""
    seed, strength, steps = 17, 0.5, 6
    with UNetInputs() as seen:
        result = _one(gen, seed=seed, sampler=sampler, steps=steps, init_img=pictures["init"],
                      strength=strength, cfg_scale=1.0)
    init_latents, noise = _init_latents_and_noise(gradient_image(0), seed)
    scheduler, _ = make_scheduler(sampler, tiny_model().scheduler_config)
    first_input, first_t = seen.calls[0]
    start = steps - steps_to_run(strength, steps)
    assert result.info.start_step == start
    if sampler in SIGMA_SAMPLERS:
        scheduler.set_timesteps(steps)
        order = int(scheduler.order)
        sigma = float(scheduler.sigmas[start * order])
        expected = (init_latents + noise * sigma) / (sigma**2 + 1) ** 0.5
    elif sampler not in ("ddim", "plms"):  # their own timesteps (DPM++ 2M, UniPC, LCM ...)
        scheduler.set_timesteps(steps)
        assert first_t == scheduler.timesteps[start]
        alpha = scheduler.alphas_cumprod[int(first_t)]
        expected = alpha**0.5 * init_latents + (1 - alpha) ** 0.5 * noise
    else:
        full = _leading_timesteps(steps)
        assert first_t == full[start]
        alpha = scheduler.alphas_cumprod[full[start]]
        expected = alpha**0.5 * init_latents + (1 - alpha) ** 0.5 * noise
    assert torch.allclose(first_input, expected.float(), atol=1e-5)


def _leading_timesteps(steps: int) -> list[int]:
    """SD's "leading" timesteps with steps_offset 1: 751, 501, 251, 1 for 4 steps."""
    ratio = 1000 // steps
    return [k * ratio + 1 for k in reversed(range(steps))]


@pytest.mark.parametrize("sampler", DETERMINISTIC)
@pytest.mark.parametrize("strength", [1.0, pytest.param(0.5, id="0.5")])
def test_a_perfect_noise_predictor_lands_on_the_init_latent(sampler: str, strength: float) -> None:
    """Told the true noise at every call, a deterministic sampler that starts at the right level
    and walks the right (sliced) schedule ends exactly where the noise-free latent is; a skipped or
    repeated step, or a wrong start level, leaves noise behind.  Also: on_step once per real
    sampling step."""
    steps = 6
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn((1, 4, 8, 8), generator=generator)
    noise = torch.randn((1, 4, 8, 8), generator=generator)
    scheduler, _ = make_scheduler(sampler, tiny_model().scheduler_config)
    schedule = Schedule.full(scheduler, sampler, steps)
    if strength < 1.0:
        schedule = schedule.sliced(steps_to_run(strength, steps))
    x = schedule.noise_init(z0, noise)
    seen: list[StepInfo] = []
    out = sample(lambda _x, _t: noise, x, schedule, on_step=seen.append)
    if sampler in SIGMA_SAMPLERS:
        expected = z0
    else:  # DDIM/PLMS end at the "final" alpha (alphas_cumprod[0] with set_alpha_to_one False)
        final = float(scheduler.final_alpha_cumprod)
        expected = final**0.5 * z0 + (1 - final) ** 0.5 * noise
    assert torch.allclose(out, expected, atol=1e-4), f"off by {float((out - expected).abs().max())}"
    assert [s.index for s in seen] == list(range(schedule.steps_run))
    assert {s.total for s in seen} == {schedule.steps_run}


# ------------------------------------------------------------------------------ 4. seamless


def _paddings() -> set[str]:
    model = tiny_model()
    return {layer.padding_mode for module in (model.unet, model.vae)
            for layer in module.modules() if isinstance(layer, torch.nn.Conv2d)}


def test_seamless_is_circular_during_every_step_and_restored_after(gen: Generator) -> None:
    during: list[set[str]] = []
    _one(gen, seed=2, seamless=True, on_step=lambda _info: during.append(_paddings()))
    assert during and all(modes == {"circular"} for modes in during)
    assert _paddings() == {"zeros"}
    plain_during: list[set[str]] = []
    _one(gen, seed=2, on_step=lambda _info: plain_during.append(_paddings()))
    assert all(modes == {"zeros"} for modes in plain_during)


def test_seamless_padding_restored_after_an_interrupt(gen: Generator) -> None:
    def stop(_info: StepInfo) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _one(gen, seed=2, seamless=True, on_step=stop)
    assert _paddings() == {"zeros"}


# ------------------------------------------------------------------------------ 5. prompts


def test_equal_weights_give_the_mean_embedding(gen: Generator) -> None:
    cat, dog = gen.text.encode("a cat"), gen.text.encode("a dog")
    both = gen.text.conditioning("a cat:1 a dog:1")
    assert torch.allclose(both.cond, (cat + dog) / 2, atol=1e-6)
    uneven = gen.text.conditioning("a cat:3 a dog:1")
    assert torch.allclose(uneven.cond, 0.75 * cat + 0.25 * dog, atol=1e-6)


def test_skip_normalize_uses_the_raw_weights(gen: Generator) -> None:
    cat, dog = gen.text.encode("a cat"), gen.text.encode("a dog")
    raw = gen.text.conditioning("a cat:1 a dog:1", normalize=False)
    assert torch.allclose(raw.cond, cat + dog, atol=1e-6)
    scaled = gen.text.conditioning("a cat:2 a dog:0.5", normalize=False)
    assert torch.allclose(scaled.cond, 2 * cat + 0.5 * dog, atol=1e-5)


def test_skip_normalize_reaches_the_image(gen: Generator) -> None:
    normalized = _one(gen, seed=6, prompt="a cat:1 a dog:1")
    raw = _one(gen, seed=6, prompt="a cat:1 a dog:1", skip_normalize=True)
    assert not _same(normalized.image, raw.image)


def test_negative_words_change_only_the_unconditional_embedding(gen: Generator) -> None:
    plain = gen.text.conditioning("a cat")
    negative = gen.text.conditioning("a cat [fog]")
    assert torch.equal(negative.cond, plain.cond)
    assert torch.equal(negative.uncond, gen.text.encode("fog"))
    assert torch.equal(plain.uncond, gen.text.encode(""))
    assert not torch.allclose(negative.uncond, plain.uncond)


# ------------------------------------------------------------------------------ 6. progress


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
def test_on_step_once_per_sampling_step(gen: Generator, pictures: dict[str, str], sampler: str,
                                        mode: str) -> None:
    extra = _img2img(pictures) if mode == "img2img" else {}
    seen: list[StepInfo] = []
    result = _one(gen, seed=1, sampler=sampler, on_step=seen.append, **extra)
    expected = steps_to_run(0.75, STEPS) if extra else STEPS
    assert result.info.steps_run == expected
    assert [s.index for s in seen] == list(range(expected))
    assert all(s.total == expected for s in seen)
    assert all(tuple(s.latents.shape) == (1, 4, 8, 8) for s in seen)
    assert all((s.sigma is None) == (sampler not in SIGMA_SAMPLERS) for s in seen)
    if sampler in SIGMA_SAMPLERS:  # each step starts less noisy than the one before
        sigmas = [s.sigma for s in seen]
        assert sigmas == sorted(sigmas, reverse=True) and len(set(sigmas)) == len(sigmas)
    # The last step's latents are what was decoded.
    assert _same(gen.decode(seen[-1].latents), result.image)


def test_preview_is_latent_sized_rgb_in_range(gen: Generator) -> None:
    seen: list[StepInfo] = []
    _one(gen, seed=1, on_step=seen.append)
    preview = latents_to_preview_rgb(seen[-1].latents, gen.preview_map, full_size=False)
    assert preview.mode == "RGB" and preview.size == (8, 8)
    values = np.asarray(preview)
    assert values.dtype == np.uint8 and values.min() >= 0 and values.max() <= 255
    assert len(np.unique(values.reshape(-1, 3), axis=0)) > 1  # a picture, not a flat colour
    wide = latents_to_preview_rgb(seed_noise(1, (1, 4, 8, 16), "cpu", torch.float32),
                                  gen.preview_map, full_size=False)
    assert wide.size == (16, 8)
