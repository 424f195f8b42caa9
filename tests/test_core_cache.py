"""The Generator's caches (dreamline.core.cache): a repeated prompt or init picture is not encoded
again, a changed one always is, and cached results equal a fresh Generator's bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from core_fixtures import SIZE, gradient_image, prepared, write_image
from part_files import fresh_model, save_lora
from PIL import Image

from dreamline.core import Generator
from dreamline.core.cache import LRU, TEXT_ENTRIES, picture_key
from dreamline.models.lora import LoraLibrary
from dreamline.request import Request

PROMPT = "a tree by a river"


class Calls:
    """Counts forward calls of one module (a torch forward hook)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: object) -> None:
        self.count += 1


@contextmanager
def counting(module: torch.nn.Module) -> Iterator[Calls]:
    calls = Calls()
    handle = module.register_forward_hook(calls)
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def model():
    return fresh_model()


def _request(**changes: object) -> Request:
    base = dict(prompt=PROMPT, steps=4, seed=7, width=SIZE, height=SIZE, sampler="k_lms")
    base.update(changes)
    return Request(**base)  # type: ignore[arg-type]


def _pixels(gen: Generator, request: Request) -> list[np.ndarray]:
    images = gen.generate(request, init=prepared(request))
    return [np.asarray(item.image, dtype=np.uint8) for item in images]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# --- the LRU itself ----------------------------------------------------------------------------

def test_lru_keeps_the_most_recent_and_counts() -> None:
    cache: LRU[int] = LRU(2)
    made: list[str] = []

    def make(key: str) -> int:
        made.append(key)
        return len(made)

    assert cache.get_or_make("a", lambda: make("a")) == 1
    assert cache.get_or_make("b", lambda: make("b")) == 2
    assert cache.get_or_make("a", lambda: make("a")) == 1  # a is now the newest
    cache.get_or_make("c", lambda: make("c"))  # evicts b
    assert len(cache) == 2
    cache.get_or_make("b", lambda: make("b"))
    assert made == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (1, 4)


def test_lru_keeps_nothing_when_making_fails() -> None:
    cache: LRU[int] = LRU(2)

    def broken() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_make("a", broken)
    assert len(cache) == 0
    with pytest.raises(ValueError, match="cache size 0"):
        LRU(0)


def test_picture_key_tells_pixels_apart() -> None:
    a, b = gradient_image(0), gradient_image(1)
    assert picture_key(a) == picture_key(a.copy())
    assert picture_key(a) != picture_key(b)
    assert picture_key(a) != picture_key(gradient_image(0, SIZE * 2))


# --- text conditioning -------------------------------------------------------------------------

def test_text_encoder_runs_once_per_distinct_text_across_lines(model) -> None:
    gen = Generator(model)
    with counting(model.text_encoder) as calls:
        first = _pixels(gen, _request(iterations=2))
        assert calls.count == 2  # the prompt and the empty negative, once for both images
        again = _pixels(gen, _request(iterations=2))
        assert calls.count == 2  # the next line with the same prompt: nothing encoded
    assert _same(first, again)
    assert _same(again, _pixels(Generator(model), _request(iterations=2)))


@pytest.mark.parametrize("changed", [
    dict(prompt="a house on a hill"),  # another prompt
    dict(prompt=f"{PROMPT} [blurry]"),  # a negative
    dict(prompt=f"{PROMPT} [ugly]"),  # another negative
    dict(prompt="a tree:1 a river:3"),  # weighted sub-prompts
    dict(prompt="a tree:1 a river:3", skip_normalize=True),  # the same, not normalised
    dict(prompt="a (tree)1.4 by a river"),  # attention weighting
])
def test_a_changed_prompt_is_encoded_and_equals_a_fresh_generator(model, changed) -> None:
    gen = Generator(model)
    _pixels(gen, _request(prompt=f"{PROMPT} [blurry]"))
    _pixels(gen, _request(prompt="a tree:1 a river:3"))
    cached = _pixels(gen, _request(**changed))
    assert _same(cached, _pixels(Generator(model), _request(**changed)))


def test_a_new_text_is_encoded_and_the_empty_negative_is_not(model) -> None:
    gen = Generator(model)
    _pixels(gen, _request())
    with counting(model.text_encoder) as calls:
        _pixels(gen, _request(prompt="a house on a hill"))
        assert calls.count == 1  # only the new prompt: "" is kept from the first line
        _pixels(gen, _request(prompt=f"{PROMPT} [blurry]"))
        assert calls.count == 2  # only the new negative


def test_loras_change_the_text_encoder_so_it_runs_again(tmp_path: Path) -> None:
    save_lora(tmp_path / "kohya.safetensors", "kohya", seed=1)
    save_lora(tmp_path / "other.safetensors", "kohya", seed=2)
    lora_model = fresh_model()
    gen = Generator(lora_model, loras=LoraLibrary(tmp_path))
    plain = _pixels(gen, _request())
    lines = [dict(loras=(("kohya", 0.8),)), dict(loras=(("kohya", 0.4),)),
             dict(loras=(("other", 0.8),)), dict(loras=(("kohya", 0.8), ("other", 0.8))), {}]
    for changes in lines:
        with counting(lora_model.text_encoder) as calls:
            ours = _pixels(gen, _request(**changes))
        expected = 0 if not changes else 2  # back to the plain model: its encodings are kept
        assert calls.count == expected, changes
        fresh_gen = Generator(fresh_model(), loras=LoraLibrary(tmp_path))
        assert _same(ours, _pixels(fresh_gen, _request(**changes))), changes
    assert _same(_pixels(gen, _request()), plain)


def test_text_cache_is_bounded(model) -> None:
    gen = Generator(model)
    for index in range(TEXT_ENTRIES + 4):
        gen.text.conditioning(f"prompt number {index}")
    assert len(gen.text.cache) == TEXT_ENTRIES


def test_generators_of_other_models_share_nothing() -> None:
    a, b = Generator(fresh_model(seed=0)), Generator(fresh_model(seed=1))
    cond_a = a.text.conditioning(PROMPT).cond
    assert not torch.equal(cond_a, b.text.conditioning(PROMPT).cond)
    assert torch.equal(cond_a, a.text.conditioning(PROMPT).cond)


# --- the init image's encoder output -----------------------------------------------------------

def test_init_picture_is_encoded_once_and_each_image_draws_its_own_sample(
        model, tmp_path: Path) -> None:
    init = write_image(tmp_path, 0)
    request = _request(init_img=str(init), strength=0.75, iterations=3)
    gen = Generator(model)
    with counting(model.vae.encoder) as calls:
        first = _pixels(gen, request)
        assert calls.count == 1
        again = _pixels(gen, _request(init_img=str(init), strength=0.5, iterations=3, seed=9))
        assert calls.count == 1  # another strength and seed, the same picture: kept
        repeat = _pixels(gen, request)
        assert calls.count == 1
    assert len({item.tobytes() for item in first}) == 3  # each image its own draw
    assert _same(first, repeat)
    assert _same(first, _pixels(Generator(model), request))
    assert not _same(first, again)


def _rewrite(path: Path, kind: int, size: int = SIZE) -> None:
    gradient_image(kind, size).save(path)


def test_a_changed_init_picture_is_encoded_again(model, tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    _rewrite(init, 0)
    request = _request(init_img=str(init), strength=0.75)
    gen = Generator(model)
    _pixels(gen, request)
    _rewrite(init, 1)  # the same path, another picture
    with counting(model.vae.encoder) as calls:
        ours = _pixels(gen, request)
        assert calls.count == 1
    assert _same(ours, _pixels(Generator(model), request))


def test_another_size_of_the_same_file_is_encoded_again(model, tmp_path: Path) -> None:
    init = write_image(tmp_path, 0, size=SIZE * 2)
    gen = Generator(model)
    _pixels(gen, _request(init_img=str(init), strength=0.75, fit=True))
    bigger = _request(init_img=str(init), strength=0.75, fit=True, width=SIZE * 2,
                      height=SIZE * 2)
    with counting(model.vae.encoder) as calls:
        ours = _pixels(gen, bigger)
        assert calls.count == 1
    assert ours[0].shape[:2] == (SIZE * 2, SIZE * 2)
    assert _same(ours, _pixels(Generator(model), bigger))


def test_a_changed_mask_never_reuses_the_old_one(model, tmp_path: Path) -> None:
    init = write_image(tmp_path, 0)
    masks = []
    for index, keep_left in enumerate((True, False)):
        mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
        if keep_left:
            mask[:, : SIZE // 2] = 255
        else:
            mask[: SIZE // 2, :] = 255
        path = tmp_path / f"mask{index}.png"
        Image.fromarray(mask, mode="L").save(path)
        masks.append(path)
    gen = Generator(model)
    results = []
    for mask_path in masks:
        request = _request(init_img=str(init), init_mask=str(mask_path), strength=0.75)
        ours = _pixels(gen, request)
        assert _same(ours, _pixels(Generator(model), request))
        results.append(ours)
    assert not _same(results[0], results[1])
    assert gen.init_cache.misses == 1 and gen.init_cache.hits == 1  # one picture, two masks


def test_a_new_vae_object_is_never_given_another_vaes_encoding(tmp_path: Path) -> None:
    from dataclasses import replace

    init = write_image(tmp_path, 0)
    request = _request(init_img=str(init), strength=0.75)
    first = fresh_model(seed=0)
    other = replace(first, vae=fresh_model(seed=3).vae)  # the same networks, another VAE
    gen = Generator(first)
    ours = _pixels(gen, request)
    gen.model = other  # a model whose VAE was swapped under the Generator
    swapped = _pixels(gen, request)
    assert gen.init_cache.misses == 2
    assert not _same(ours, swapped)
    assert _same(swapped, _pixels(Generator(other), request))
