"""The GPU path, tested on the CPU: the VAE's float32 decode (config and NaN fallback), VAE
tiling, the out-of-memory ladder (fault injection into a real tiny model), CPU offload, and
the attention kernel named when a model loads."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from core_fixtures import fresh_tiny_model
from dreamline.cli import build_parser, settings_from_args
from dreamline.core import Generator, memory
from dreamline.core import latents as latent_ops
from dreamline.devices import attention_kind
from dreamline.models.manager import ModelManager
from dreamline.models.types import LoadedModel
from dreamline.repl.memory import MemoryLadder
from dreamline.repl.runner import OutOfMemory, Runner
from dreamline.repl.settings import Settings
from dreamline.request import Request
from tiny_models import tiny_vae


def fresh_model() -> LoadedModel:
    """A tiny model of its own: the ladder changes networks in place, so never the shared one."""
    return fresh_tiny_model()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def half_vae(dtype: torch.dtype, **config: Any) -> Any:
    torch.manual_seed(0)
    vae = tiny_vae().eval().requires_grad_(False)
    if config:
        vae.register_to_config(**config)
    for part in vae.children():  # per part, as a loader's cast would leave it
        part.to(dtype=dtype)
    return vae


def float32_decode(vae: Any, latents: torch.Tensor) -> Image.Image:
    """What the fallback must give: the same (rounded) weights, widened to float32."""
    wide = copy.deepcopy(vae)
    for part in wide.children():
        part.to(dtype=torch.float32)
    with torch.inference_mode():
        return latent_ops.decode(wide, latents)


LATENTS = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))


# ---- float32 decode -------------------------------------------------------------------------

def test_a_nan_half_precision_decode_is_redone_in_float32_and_said_once() -> None:
    vae = half_vae(torch.bfloat16)
    expected = float32_decode(vae, LATENTS)
    faults = []

    def nan_in_half(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if output.dtype != torch.float32:
            faults.append(output.dtype)
            return torch.full_like(output, float("nan"))
        return None

    vae.decoder.register_forward_hook(nan_in_half)
    said: list[str] = []
    with torch.inference_mode():
        image = latent_ops.decode(vae, LATENTS, report=said.append)
        again = latent_ops.decode(vae, LATENTS, report=said.append)
    assert faults == [torch.bfloat16]  # the second decode went straight to float32
    assert np.array_equal(pixels(image), pixels(expected))
    assert np.array_equal(pixels(again), pixels(expected))
    assert said == ["the bfloat16 VAE decode gave NaN/inf pixels; decoded again in float32 "
                    "(the VAE decoder stays float32 for this model)"]
    assert latent_ops.decoder_dtype(vae) == torch.float32
    assert next(vae.encoder.parameters()).dtype == torch.bfloat16  # the encoder is untouched


def test_a_finite_half_precision_decode_stays_half() -> None:
    vae = half_vae(torch.bfloat16)
    said: list[str] = []
    with torch.inference_mode():
        latent_ops.decode(vae, LATENTS, report=said.append)
    assert said == [] and latent_ops.decoder_dtype(vae) == torch.bfloat16


def test_a_float16_vae_whose_config_asks_decodes_in_float32() -> None:
    asks = half_vae(torch.float16, force_upcast=True)
    expected = float32_decode(asks, LATENTS)
    said: list[str] = []
    with torch.inference_mode():
        image = latent_ops.decode(asks, LATENTS, report=said.append)
    assert np.array_equal(pixels(image), pixels(expected)) and said == []
    assert latent_ops.decoder_dtype(asks) == torch.float32

    does_not_ask = half_vae(torch.float16, force_upcast=False)
    with torch.inference_mode():
        latent_ops.decode(does_not_ask, LATENTS)
    assert latent_ops.decoder_dtype(does_not_ask) == torch.float16


def test_the_encoder_runs_in_its_own_dtype_after_the_decoder_was_upcast() -> None:
    vae = half_vae(torch.bfloat16)
    latent_ops.upcast_decoder(vae)
    with torch.inference_mode():
        dist = latent_ops.encode(vae, Image.new("RGB", (64, 64), (200, 30, 30)))
        preview = latent_ops.fit_preview_map(vae, 8, images=3)
    assert dist.mean.dtype == torch.bfloat16 and preview.weight.shape == (4, 3)


# ---- VAE tiling -----------------------------------------------------------------------------

def test_vae_tiling_makes_the_right_size_and_changes_nothing_up_to_a_tile() -> None:
    plain, tiled = fresh_model(), fresh_model()
    memory.use_vae_tiling(tiled)
    assert tiled.vae.use_tiling and memory.modes(tiled) == (memory.VAE_TILING,)
    small = Request(prompt="a fox", steps=2, seed=5, width=64, height=64)  # the tiny VAE's tile
    big = small.with_changes(width=128, height=64)
    same = [Generator(m).generate(small)[0].image for m in (plain, tiled)]
    assert np.array_equal(pixels(same[0]), pixels(same[1]))
    image = Generator(tiled).generate(big)[0].image
    assert image.size == (128, 64)


# ---- the out-of-memory ladder, on a real tiny model -----------------------------------------

class FailingCalls:
    """A UNet pre-hook raising an out-of-memory error on the given call numbers (from 1)."""

    def __init__(self, model: LoadedModel, failing: set[int], error: type[Exception]) -> None:
        self.calls = 0
        self.failing = failing
        self.error = error
        model.unet.register_forward_pre_hook(self)

    def __call__(self, *_: Any) -> None:
        self.calls += 1
        if self.calls in self.failing:
            raise self.error("CUDA out of memory. Tried to allocate 20.00 GiB")


def run_request(tmp_path: Path, model: LoadedModel, request: Request
                ) -> tuple[list[tuple[Path, int]], list[str]]:
    said: list[str] = []
    generator = Generator(model)
    runner = Runner(Settings(outdir=tmp_path), lambda: generator, say=said.append,
                    progress_stream=io.StringIO())
    saved: list[tuple[Path, int]] = []
    runner.run(request, lambda path, seed: saved.append((path, seed)))
    return saved, said


REQUEST = Request(prompt="a fox", steps=2, seed=7, iterations=3, sampler="k_euler")


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
def test_out_of_memory_retries_only_the_image_that_failed(tmp_path: Path,
                                                          error: type[Exception]) -> None:
    clean, _ = run_request(tmp_path / "clean", fresh_model(), REQUEST)
    model = fresh_model()
    faults = FailingCalls(model, {3}, error)  # image 2's first step, once
    saved, said = run_request(tmp_path / "retried", model, REQUEST)
    assert [seed for _, seed in saved] == [seed for _, seed in clean]
    assert [path.name for path, _ in saved] == [path.name for path, _ in clean]
    for (ours, _), (theirs, _) in zip(saved, clean, strict=True):
        assert np.array_equal(pixels(Image.open(ours)), pixels(Image.open(theirs)))
    assert faults.calls == 3 * 2 + 1  # 2 steps per image, one failed call repeated
    assert ">> out of memory at 64x64; retried after freeing memory: worked" in said
    assert memory.modes(model) == ()  # freeing was enough: nothing changed


def test_the_next_rung_is_kept_for_the_model(tmp_path: Path) -> None:
    model = fresh_model()
    faults = FailingCalls(model, {3, 4}, torch.OutOfMemoryError)  # freeing is not enough
    saved, said = run_request(tmp_path, model, REQUEST)
    assert len(saved) == 3 and len({seed for _, seed in saved}) == 3
    assert (">> out of memory at 64x64; retried with attention slicing: worked (kept on for "
            "this model)") in said
    assert memory.modes(model) == (memory.ATTENTION_SLICING,)
    assert attention_kind(model.unet) == "sliced"
    assert faults.calls == 3 * 2 + 2
    saved_again, said_again = run_request(tmp_path, model, REQUEST.with_changes(iterations=1))
    assert len(saved_again) == 1 and not any("out of memory" in line for line in said_again)


def test_when_every_rung_fails_the_finished_images_stay(tmp_path: Path) -> None:
    model = fresh_model()
    FailingCalls(model, set(range(3, 100)), torch.OutOfMemoryError)
    said: list[str] = []
    generator = Generator(model)
    runner = Runner(Settings(outdir=tmp_path), lambda: generator, say=said.append,
                    progress_stream=io.StringIO())
    saved: list[int] = []
    with pytest.raises(OutOfMemory) as failed:
        runner.run(REQUEST, lambda path, seed: saved.append(seed))
    assert str(failed.value) == (
        "out of memory at 64x64; try --fit or a smaller -W/-H (the memory it held is free "
        "again; retried after freeing memory, with attention slicing, with VAE tiling)")
    assert len(saved) == 1 and len(list(tmp_path.glob("*.png"))) == 1
    assert said[0] == "Outputs:"  # the finished image is listed
    assert memory.modes(model) == (memory.ATTENTION_SLICING, memory.VAE_TILING)


def test_on_cuda_the_ladder_ends_with_cpu_offload(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    monkeypatch.setattr(memory, "apply", lambda model, rung: applied.append(rung))
    monkeypatch.setattr(memory, "modes", lambda model: tuple(applied))
    model = SimpleNamespace(device=torch.device("cuda", 0), unet=object())  # no real GPU used
    ladder = MemoryLadder(model, "1024x1024", print)
    attempts: list[int] = []

    def attempt(first: int) -> None:
        attempts.append(first)
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        ladder.run(attempt, lambda: 0)
    assert applied == [memory.ATTENTION_SLICING, memory.VAE_TILING, memory.CPU_OFFLOAD]
    assert ladder.tried == [memory.FREE, *applied] and len(attempts) == 5
    assert memory.rungs_for("cpu") == memory.RUNGS[:-1]


def test_other_errors_are_not_retried() -> None:
    ladder = MemoryLadder(None, "64x64", print)
    attempts: list[int] = []

    def attempt(first: int) -> None:
        attempts.append(first)
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        ladder.run(attempt, lambda: 0)
    assert attempts == [0] and ladder.tried == []


def test_cpu_offload_keeps_the_pixels() -> None:
    request = Request(prompt="a fox", steps=2, seed=9)
    expected = Generator(fresh_model()).generate(request)[0].image
    model = fresh_model()
    memory.apply(model, memory.CPU_OFFLOAD)
    assert memory.execution_device(model.vae) == torch.device("cpu")
    assert hasattr(model.unet, "_hf_hook") and memory.modes(model) == (memory.CPU_OFFLOAD,)
    image = Generator(model).generate(request)[0].image
    assert np.array_equal(pixels(image), pixels(expected))


def test_a_rung_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="'tiles' is not a rung"):
        memory.apply(fresh_model(), "tiles")


# ---- launch option and the loaded line ------------------------------------------------------

def test_vae_tiling_option_and_the_attention_on_the_loaded_line() -> None:
    settings = settings_from_args(build_parser().parse_args(["--vae_tiling"]))
    assert settings.vae_tiling and not settings_from_args(build_parser().parse_args([])).vae_tiling
    said: list[str] = []
    manager = ModelManager(models_file=None, device="cpu", precision="auto", wanted=None,
                           say=said.append, vae_tiling=settings.vae_tiling)
    model = manager.current()
    assert model.vae.use_tiling
    loaded = [line for line in said if " loaded in " in line]
    assert len(loaded) == 1 and loaded[0].endswith(", attention sdpa")


def test_a_generator_without_networks_only_frees_and_retries() -> None:
    """A Ray driver's generator has a model description, not networks: nothing to change."""
    ladder = MemoryLadder(SimpleNamespace(device=torch.device("cuda", 0), name="remote"),
                          "512x512", print)
    attempts: list[int] = []

    def attempt(first: int) -> None:
        attempts.append(first)
        raise MemoryError()

    with pytest.raises(MemoryError):
        ladder.run(attempt, lambda: 0)
    assert ladder.tried == [memory.FREE] and attempts == [0, 0]


def test_a_retry_without_a_seed_keeps_the_commands_seeds(tmp_path: Path) -> None:
    """No -S: the images made after the retry derive from the same drawn seed as image 1."""
    from dreamline.core.noise import derive_seed

    model = fresh_model()
    FailingCalls(model, {3}, torch.OutOfMemoryError)
    saved, _ = run_request(tmp_path, model, REQUEST.with_changes(seed=None))
    base = saved[0][1]
    assert [seed for _, seed in saved] == [derive_seed(base, index) for index in range(3)]
