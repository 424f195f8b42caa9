"""Generator behaviour on a tiny model: steps, samplers, seeds, variations, strength 1, noise."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core_fixtures import generate, gradient_image, tiny_model, write_image
from dreamline.core import Generator, StepInfo, derive_seed, draw_noise, latents_to_preview_rgb
from dreamline.core.noise import blend_variations, seed_noise, seeded_generator, slerp
from dreamline.core import make_scheduler, steps_to_run
from dreamline.errors import DreamlineError
from dreamline.request import SAMPLERS, Request

STEPS = 4


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _same(a, b) -> bool:
    return bool(np.array_equal(_pixels(a), _pixels(b)))


@pytest.fixture()
def lines() -> list[str]:
    return []


@pytest.fixture()
def gen(lines: list[str]) -> Generator:
    return Generator(tiny_model(), report=lines.append)


@pytest.fixture()
def inits(tmp_path: Path) -> tuple[str, str]:
    return str(write_image(tmp_path, 0)), str(write_image(tmp_path, 1))


def _one(gen: Generator, **fields) -> object:
    fields.setdefault("steps", STEPS)
    fields.setdefault("prompt", "a lighthouse")
    return generate(gen, Request(**fields))[0]


@pytest.mark.parametrize(("strength", "steps", "expected"),
                         [(0.29, 100, 29), (0.7, 10, 7), (0.4, 10, 4), (1.0, 10, 10),
                          (0.75, 50, 37), (0.3, 10, 3)])
def test_strength_to_steps(strength: float, steps: int, expected: int) -> None:
    assert steps_to_run(strength, steps) == expected


def test_tiny_strength_is_a_clear_error(gen: Generator, inits: tuple[str, str]) -> None:
    with pytest.raises(DreamlineError, match=r"strength 0\.05 .*steps 10"):
        _one(gen, steps=10, seed=1, init_img=inits[0], strength=0.05)


def test_img2img_reports_start_and_runs_t_enc_steps(gen: Generator, lines: list[str],
                                                    inits: tuple[str, str]) -> None:
    seen: list[StepInfo] = []
    result = generate(gen, Request(prompt="x", steps=10, seed=3, init_img=inits[0], strength=0.7),
                          on_step=seen.append)[0]
    assert "starting at step 3 of 10 (7 new sampling steps)" in lines
    assert (result.info.steps_run, result.info.start_step, result.info.strength) == (7, 3, 0.7)
    assert [s.index for s in seen] == list(range(7)) and seen[-1].total == 7
    assert seen[0].sigma is not None and seen[0].latents.shape == (1, 4, 8, 8)
    assert result.info.init_img == inits[0] and len(result.info.init_hash) == 10
    assert result.info.init_hash == hashlib.sha256(Path(inits[0]).read_bytes()).hexdigest()[:10]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_and_is_deterministic(gen: Generator, inits: tuple[str, str],
                                                  sampler: str) -> None:
    for extra in ({"init_img": inits[0], "strength": 0.5}, {}):
        first = _one(gen, seed=11, sampler=sampler, steps=3, **extra)
        again = _one(gen, seed=11, sampler=sampler, steps=3, **extra)
        assert first.image.size == (64, 64) and first.info.sampler == sampler
        assert _same(first.image, again.image)
        assert first.info.schedule == "model"


@pytest.mark.parametrize("sampler", ["k_lms", "k_euler_a", "k_heun"])
def test_karras_schedule_runs_and_is_recorded(gen: Generator, sampler: str) -> None:
    karras = _one(gen, seed=5, sampler=sampler, karras=True)
    plain = _one(gen, seed=5, sampler=sampler)
    assert karras.info.schedule == "karras"
    assert not _same(karras.image, plain.image)


@pytest.mark.parametrize("sampler", ["ddim", "plms"])
def test_karras_with_ddim_or_plms_is_an_error(gen: Generator, sampler: str) -> None:
    with pytest.raises(DreamlineError, match=f"--karras.*{sampler}"):
        _one(gen, seed=5, sampler=sampler, karras=True)


def test_karras_sigmas_differ_from_model_sigmas() -> None:
    config = tiny_model().scheduler_config
    plain, _ = make_scheduler("k_lms", config)
    karras, name = make_scheduler("k_lms", config, karras=True)
    plain.set_timesteps(10)
    karras.set_timesteps(10)
    assert name == "karras" and not torch.allclose(plain.sigmas, karras.sigmas)


def test_different_seeds_give_different_images(gen: Generator, inits: tuple[str, str]) -> None:
    assert not _same(_one(gen, seed=1).image, _one(gen, seed=2).image)
    a = _one(gen, seed=1, init_img=inits[0], strength=0.5)
    b = _one(gen, seed=2, init_img=inits[0], strength=0.5)
    assert not _same(a.image, b.image)


def test_init_image_matters_below_strength_one(gen: Generator, inits: tuple[str, str]) -> None:
    a = _one(gen, seed=9, init_img=inits[0], strength=0.3)
    b = _one(gen, seed=9, init_img=inits[1], strength=0.3)
    assert not _same(a.image, b.image)


def test_strength_one_ignores_the_init_image(gen: Generator, inits: tuple[str, str]) -> None:
    a = _one(gen, seed=9, init_img=inits[0], strength=1.0)
    b = _one(gen, seed=9, init_img=inits[1], strength=1.0)
    plain = _one(gen, seed=9, width=64, height=64)
    assert _same(a.image, b.image) and _same(a.image, plain.image)
    assert a.info.steps_run == STEPS and a.info.start_step == 0


def test_iterations_have_reproducible_own_seeds(gen: Generator) -> None:
    results = generate(gen, Request(prompt="p", steps=2, seed=42, iterations=3))
    seeds = [r.seed for r in results]
    assert seeds[0] == 42 and len(set(seeds)) == 3
    assert seeds == [derive_seed(42, k) for k in range(3)]
    for result in results:
        assert result.request.iterations == 1 and result.request.seed == result.seed
        assert _same(generate(gen, result.request)[0].image, result.image)


def test_missing_seed_is_resolved_and_recorded(gen: Generator) -> None:
    result = _one(gen, seed=None, steps=2)
    assert result.request.seed == result.seed and 0 <= result.seed < 2**32
    assert _same(_one(gen, seed=result.seed, steps=2).image, result.image)


def test_variation_zero_equals_plain(gen: Generator, inits: tuple[str, str]) -> None:
    assert _same(_one(gen, seed=7, variation_amount=0.0).image, _one(gen, seed=7).image)
    img = {"init_img": inits[0], "strength": 0.6}
    assert _same(_one(gen, seed=7, variation_amount=0.0, **img).image,
                 _one(gen, seed=7, **img).image)


@pytest.mark.parametrize("sampler", ["k_lms", "k_euler_a", "ddim"])
@pytest.mark.parametrize("img2img", [False, True])
def test_variation_request_reproduces_its_image(gen: Generator, inits: tuple[str, str],
                                                sampler: str, img2img: bool) -> None:
    extra = {"init_img": inits[0], "strength": 0.6} if img2img else {}
    variations = generate(gen, Request(prompt="v", steps=3, seed=7, sampler=sampler,
                                      variation_amount=0.3, iterations=2,
                                      with_variations=((99, 0.2),), **extra))
    plain = _one(gen, seed=7, steps=3, sampler=sampler, with_variations=((99, 0.2),), **extra)
    seen = set()
    for result in variations:
        request = result.request
        assert request.seed == 7 and request.variation_amount == 0 and request.iterations == 1
        assert request.with_variations == ((99, 0.2), (result.seed, 0.3))
        assert not _same(result.image, plain.image)
        assert _same(generate(gen, request)[0].image, result.image)
        seen.add(result.seed)
    assert len(seen) == 2 and 7 not in seen


def test_with_variations_blend_in_order() -> None:
    base = seed_noise(1, (1, 4, 8, 8), "cpu", torch.float32)
    a_then_b = blend_variations(base, ((2, 0.5), (3, 0.25)))
    b_then_a = blend_variations(base, ((3, 0.25), (2, 0.5)))
    expected = slerp(0.25, slerp(0.5, base, seed_noise(2, base.shape, "cpu", torch.float32)),
                     seed_noise(3, base.shape, "cpu", torch.float32))
    assert torch.equal(a_then_b, expected)
    assert not torch.allclose(a_then_b, b_then_a)


def test_with_variations_order_changes_the_image(gen: Generator) -> None:
    ab = _one(gen, seed=1, with_variations=((2, 0.5), (3, 0.5)))
    ba = _one(gen, seed=1, with_variations=((3, 0.5), (2, 0.5)))
    assert not _same(ab.image, ba.image)


def test_slerp_ends_and_parallel_case() -> None:
    a = seed_noise(1, (1, 4, 8, 8), "cpu", torch.float32)
    b = seed_noise(2, (1, 4, 8, 8), "cpu", torch.float32)
    assert torch.equal(slerp(0.0, a, b), a)
    assert torch.allclose(slerp(1.0, a, b), b, atol=1e-5)
    middle = slerp(0.5, a, b)
    assert abs(float(middle.norm()) - float(a.norm())) < 0.05 * float(a.norm())  # stays on sphere
    nearly_same = a * 1.0001
    assert torch.allclose(slerp(0.5, a, nearly_same), (a + nearly_same) / 2)


def test_cpu_noise_is_the_same_for_any_target() -> None:
    reference = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    on_cpu = draw_noise(seeded_generator(5), (1, 4, 8, 8), torch.device("cpu"), torch.float32)
    assert torch.equal(on_cpu, reference)
    half = draw_noise(seeded_generator(5), (1, 4, 8, 8), torch.device("cpu"), torch.float16)
    assert torch.equal(half, reference.half())
    device = torch.device("meta")  # any non-CPU device: the draw still happens on the CPU
    moved = draw_noise(seeded_generator(5), (1, 4, 8, 8), device, torch.float32)
    assert moved.device == device and moved.shape == reference.shape


def test_txt2img_size_floored_with_a_message(gen: Generator, lines: list[str]) -> None:
    result = _one(gen, seed=1, steps=1, width=100, height=64)
    assert result.image.size == (64, 64) and result.request.width == 64
    assert any("100 floored to 64" in line for line in lines)
    with pytest.raises(DreamlineError, match=r"-H/--height: 40 is out of range; expected a "
                       r"size in pixels from 64 to 8192 \(a multiple of 64 for this model\)"):
        _one(gen, seed=1, steps=1, height=40)


def test_long_prompt_is_chunked_and_tokens_logged(gen: Generator, lines: list[str]) -> None:
    """Issue 9: nothing past 75 tokens is cut any more; the prompt goes in 75-token chunks."""
    _one(gen, seed=1, steps=1, prompt=" ".join(["cat"] * 80) + " zebra", log_tokenization=True)
    assert any(line.startswith("prompt tokens chunk 1 (75):") for line in lines)
    assert any(line.startswith("prompt tokens chunk 2 (6):") and "zebra" in line
               for line in lines)
    assert any(line.startswith("long prompt: 2 chunks of 75 tokens") for line in lines)
    assert not any("ignored" in line for line in lines)


def test_long_prompt_warning_is_ours_alone(lines: list[str]) -> None:
    """The tokenizer library logs its own over-length warnings straight to the screen; the
    user should see only our one line (the chunk count)."""
    from transformers import CLIPTokenizer
    from transformers.utils import logging as transformers_logging

    from dreamline.core.conditioning import TextEncoder
    from dreamline.models.loader import TOKENIZER_DIR

    model = tiny_model()
    text = TextEncoder(CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR)), model.text_encoder,
                       model.device, model.dtype, lines.append)
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = logged.append  # type: ignore[method-assign]
    library = transformers_logging.get_logger("transformers")
    library.addHandler(handler)
    try:
        text.conditioning(" ".join(["cat"] * 80) + " zebra")
    finally:
        library.removeHandler(handler)
    assert [record.getMessage() for record in logged] == []
    assert sum(line.startswith("long prompt: 2 chunks") for line in lines) == 1


def test_weighted_subprompts_change_the_conditioning(gen: Generator) -> None:
    single = gen.text.conditioning("a cat")
    weighted = gen.text.conditioning("a cat:1 a dog:1")
    cat, dog = gen.text.encode("a cat"), gen.text.encode("a dog")
    assert torch.allclose(weighted.cond, 0.5 * cat + 0.5 * dog, atol=1e-6)
    assert torch.equal(single.cond, cat)


def test_preview_and_decode_shapes(gen: Generator) -> None:
    latents = seed_noise(3, (1, 4, 8, 16), "cpu", torch.float32)
    assert latents_to_preview_rgb(latents, gen.preview_map, full_size=False).size == (16, 8)
    assert gen.preview(latents).size == (128, 64)  # blown up to line up with the decode
    assert gen.decode(latents).size == (128, 64)


def test_negative_and_cfg_change_the_image(gen: Generator) -> None:
    base = _one(gen, seed=4)
    assert not _same(base.image, _one(gen, seed=4, prompt="a lighthouse [fog]").image)
    assert not _same(base.image, _one(gen, seed=4, cfg_scale=1.0).image)


def test_inpainting_keeps_opaque_pixels_exactly(gen: Generator, tmp_path: Path) -> None:
    rgba = gradient_image(0).convert("RGBA")
    alpha = np.full((64, 64), 255, dtype=np.uint8)
    alpha[:, 32:] = 0  # right half transparent: repaint it
    rgba.putalpha(Image.fromarray(alpha))
    path = tmp_path / "hole.png"
    rgba.save(path)
    for sampler in ("k_lms", "ddim"):
        result = _one(gen, seed=2, sampler=sampler, init_img=str(path), strength=0.8)
        out, src = _pixels(result.image), _pixels(gradient_image(0))
        assert np.array_equal(out[:, :32], src[:, :32])
        assert not np.array_equal(out[:, 32:], src[:, 32:])


def test_seamless_changes_the_image_and_restores_padding(gen: Generator) -> None:
    plain = _one(gen, seed=3)
    tiled = _one(gen, seed=3, seamless=True)
    assert not _same(plain.image, tiled.image)
    convs = [m for m in tiny_model().unet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.padding_mode == "zeros" for conv in convs)
    assert _same(_one(gen, seed=3).image, plain.image)
