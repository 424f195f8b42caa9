"""--compile: the UNet goes through the compiler once per shape, that is said in one line, and
lines that change the UNet's layers in place run the plain one.  A stand-in compiler keeps these
fast; the real torch.compile runs only with DREAMLINE_TEST_COMPILE=1 (minutes on a CPU)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from core_fixtures import SIZE, tiny_model

from dreamline import cli
from dreamline.core import Generator, compiled
from dreamline.core.compiled import CompileError, check_compile_available
from dreamline.request import Request


class StandIn:
    """A compiler that returns the module itself and counts what it was asked to compile."""

    def __init__(self) -> None:
        self.modules: list[Any] = []

    def __call__(self, module: Any) -> Any:
        self.modules.append(module)
        return module


def _request(**changes: object) -> Request:
    base = dict(prompt="a tree", steps=3, seed=5, width=SIZE, height=SIZE, sampler="k_euler")
    base.update(changes)
    return Request(**base)  # type: ignore[arg-type]


def _pixels(gen: Generator, request: Request) -> np.ndarray:
    return np.asarray(gen.generate(request)[0].image)


def test_compiled_once_per_shape_and_said_in_one_line() -> None:
    lines: list[str] = []
    stand_in = StandIn()
    gen = Generator(tiny_model(), report=lines.append, compile_unet=stand_in)
    ours = _pixels(gen, _request())
    assert stand_in.modules == [tiny_model().unet]
    said = [line for line in lines if line.startswith("compiled the UNet")]
    latent = SIZE // tiny_model().vae_scale_factor
    assert len(said) == 1 and said[0].startswith(f"compiled the UNet for {latent}x{latent} "
                                                 "latents in ")
    assert np.array_equal(ours, _pixels(Generator(tiny_model()), _request()))
    lines.clear()
    _pixels(gen, _request(seed=6))  # the same shape: nothing compiled, nothing said
    assert not [line for line in lines if line.startswith("compiled")]
    _pixels(gen, _request(width=SIZE * 2))  # a new shape: compiled (and said) again
    assert len([line for line in lines if line.startswith("compiled the UNet")]) == 1
    assert len(stand_in.modules) == 1  # one compiled module per model


def test_seamless_lines_run_the_plain_unet() -> None:
    lines: list[str] = []
    stand_in = StandIn()
    gen = Generator(tiny_model(), report=lines.append, compile_unet=stand_in)
    ours = _pixels(gen, _request(seamless=True))
    assert stand_in.modules == []
    assert any("runs the plain UNet" in line for line in lines)
    assert np.array_equal(ours, _pixels(Generator(tiny_model()), _request(seamless=True)))


def test_off_by_default() -> None:
    assert Generator(tiny_model()).compiled is None
    assert cli.build_parser().parse_args([]).compile is False


def test_no_c_compiler_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(compiled.shutil, "which", lambda _name: None)
    with pytest.raises(CompileError, match="--compile: no C compiler"):
        check_compile_available("cpu")
    assert cli.main(["--compile", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "--compile: no C compiler" in err[0]


@pytest.mark.skipif(os.environ.get("DREAMLINE_TEST_COMPILE") != "1",
                    reason="torch.compile takes minutes on a CPU; set DREAMLINE_TEST_COMPILE=1")
def test_real_torch_compile_runs_the_tiny_model() -> None:  # pragma: no cover - opt-in
    lines: list[str] = []
    gen = Generator(tiny_model(), report=lines.append, compile_unet=True)
    ours = _pixels(gen, _request())
    plain = _pixels(Generator(tiny_model()), _request())
    assert any(line.startswith("compiled the UNet") for line in lines)
    assert np.abs(ours.astype(int) - plain.astype(int)).max() <= 2
