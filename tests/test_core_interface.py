"""The core's edges: it takes pixels (a PreparedInit), never paths; it is silent unless given a
report; model-independent rules (img2img runs at least one step) are refused by request
validation, before any model loads."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from core_fixtures import SIZE, gradient_image, prepared, tiny_model, write_image
from dreamline.core import Generator
from dreamline.images import InitImage
from dreamline.init_input import PreparedInit, prepare_init
from dreamline.parse import parse_line
from dreamline.request import (
    MAX_STEPS,
    SAMPLERS,
    Request,
    RequestError,
    least_strength,
    validate,
)
from dreamline.samplers import SIGMA_NAMES

STEPS = 2


def _hinted_strength(steps: int) -> float:
    """The strength the one-step error suggests for ``steps`` (read from its message)."""
    with pytest.raises(RequestError) as caught:
        validate(Request(init_img="x.png", steps=steps, strength=1e-6))
    found = re.search(r"-f (\S+) or more$", str(caught.value))
    assert found is not None, str(caught.value)
    return float(found.group(1))


def test_the_hinted_strength_is_accepted_at_every_step_count() -> None:
    for steps in range(1, MAX_STEPS + 1):
        hint = _hinted_strength(steps)
        validate(Request(init_img="x.png", steps=steps, strength=hint))  # no error
        assert hint == least_strength(steps)


@pytest.mark.parametrize(("steps", "hint"), [(3, "0.3334"), (9, "0.1112"), (12, "0.08334"),
                                             (1, "1"), (1000, "0.001")])
def test_hint_is_rounded_up_and_the_value_just_below_is_refused(steps: int, hint: str) -> None:
    assert f"{_hinted_strength(steps):g}" == hint
    below = float(hint) - 10 ** (np.floor(np.log10(float(hint))) - 3)
    with pytest.raises(RequestError, match="runs no sampling steps"):
        validate(Request(init_img="x.png", steps=steps, strength=below))


def test_the_prompt_line_is_refused_before_any_model_loads() -> None:
    with pytest.raises(RequestError, match=r"-f/--strength 0\.3 with -s/--steps 3 .*-f 0\.3334"):
        parse_line("a tree -I sketch.png -s 3 -f 0.3", Request())
    assert parse_line("a tree -s 3 -f 0.3", Request()).request.strength == 0.3  # txt2img: unused


# ---------------------------------------------------------------------------- pixels, not paths


def test_the_core_never_opens_the_init_path(tmp_path: Path) -> None:
    """The image comes from the PreparedInit; the path is only recorded."""
    gone = tmp_path / "not-there.png"
    init = PreparedInit(image=InitImage(gradient_image(0), None, (SIZE, SIZE)),
                        short_hash="abcdef0123")
    request = Request(prompt="p", steps=4, seed=3, init_img=str(gone), strength=0.5)
    result = Generator(tiny_model()).generate(request, init=init)[0]
    assert (result.info.init_img, result.info.init_hash) == (str(gone), "abcdef0123")
    on_disk = write_image(tmp_path, 0)
    from_file = Generator(tiny_model()).generate(
        Request(prompt="p", steps=4, seed=3, init_img=str(on_disk), strength=0.5),
        init=prepared(Request(init_img=str(on_disk))))[0]
    assert np.array_equal(np.asarray(result.image), np.asarray(from_file.image))


def test_img2img_without_its_init_and_txt2img_with_one_are_caller_errors(tmp_path: Path) -> None:
    gen = Generator(tiny_model())
    path = str(write_image(tmp_path, 0))
    with pytest.raises(ValueError, match="without its init image"):
        gen.generate(Request(prompt="p", steps=STEPS, init_img=path, strength=0.5))
    init = prepared(Request(init_img=path))
    with pytest.raises(ValueError, match="txt2img"):
        gen.generate(Request(prompt="p", steps=STEPS), init=init)
    odd = PreparedInit(image=InitImage(gradient_image(0, 40), None, (40, 40)), short_hash="x")
    with pytest.raises(ValueError, match="40x40; expected sides that are multiples of 64"):
        gen.generate(Request(prompt="p", steps=STEPS, init_img=path, strength=0.5), init=odd)


def test_the_core_is_silent_by_default(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                       ) -> None:
    """Nothing on stdout or stderr (file descriptors: library loggers included)."""
    path = str(write_image(tmp_path, 0))
    request = Request(prompt=" ".join(["cat"] * 80), steps=STEPS, seed=1, init_img=path,
                      strength=0.5, log_tokenization=True)
    Generator(tiny_model()).generate(request, init=prepared(request))
    for sampler in SAMPLERS:
        Generator(tiny_model()).generate(Request(prompt="p", steps=1, seed=1, width=100,
                                                 sampler=sampler,
                                                 karras=sampler in SIGMA_NAMES))
    assert capfd.readouterr() == ("", "")
    lines: list[str] = []
    Generator(tiny_model(), report=lines.append).generate(request, init=prepared(request))
    assert "starting at step 1 of 2 (1 new sampling step)" in lines
    assert any(line.startswith("long prompt: 2 chunks") for line in lines)  # issue 9: chunked


def test_prepare_init_loads_fits_reports_and_hashes(tmp_path: Path) -> None:
    path = write_image(tmp_path, 0, size=100)
    lines: list[str] = []
    assert prepare_init(Request(), default_size=(64, 64), multiple=64,
                        report=lines.append) is None
    init = prepare_init(Request(init_img=str(path), fit=True, width=64, height=128),
                        default_size=(64, 64), multiple=64, report=lines.append)
    assert init is not None and init.image.size == (64, 64) and init.image.image.mode == "RGB"
    assert init.short_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert lines and any("fit" in line for line in lines)
    floored = prepare_init(Request(init_img=str(path)), default_size=(64, 64), multiple=64,
                           report=lines.append)
    assert floored is not None and floored.image.size == (64, 64)
