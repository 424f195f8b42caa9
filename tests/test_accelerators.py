"""--deepcache N and --tome R: the opt-in accelerators that change pixels (core/accelerators.py).

Off (N = 1, R = 0) they give exactly the plain pixels; on, they change the pixels but every
image is reproduced by its seed and by the command read back from its PNG (each metadata chunk).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from core_fixtures import generate, tiny_model, write_image
from PIL import Image
from test_inpaint_unet import as_model, inpaint_parts

from dreamline.core import Generator
from dreamline.core.accelerators import DeepCacheUNet, accelerated_unet, check_accelerators
from dreamline.format import format_command
from dreamline.helptext import format_help
from dreamline.outputs import save_image
from dreamline.parse import parse_line
from dreamline.pngmeta import a1111, invokeai
from dreamline.pngmeta.a1111 import a1111_parameters
from dreamline.pngmeta.chunks import read_text_chunks
from dreamline.pngmeta.invokeai import sd_metadata, sd_metadata_request
from dreamline.repl.fetch import fetch
from dreamline.request import Request, RequestError

PROMPT = "a lighthouse at dusk"


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _run(gen: Generator, **changes: object) -> np.ndarray:
    request = Request(prompt=PROMPT, steps=6, seed=11, **changes)  # type: ignore[arg-type]
    return _pixels(generate(gen, request)[0].image)


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(tiny_model())


def _inputs(batch: int = 2, channels: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    return (torch.randn(batch, channels, 8, 8), torch.tensor(501.0), torch.randn(batch, 77, 64))


# ---- DeepCache -----------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [4, 9])  # the plain and the inpainting UNet
def test_the_shallow_path_on_its_own_cache_is_the_full_unet(channels: int) -> None:
    """The cached call reruns exactly the layers it claims to: given the features cached from the
    same input, it equals the full UNet (so only the staleness of the cache changes pixels)."""
    unet = tiny_model().unet if channels == 4 else inpaint_parts()["unet"]
    x, t, context = _inputs(channels=channels)
    wrapped = DeepCacheUNet(unet, interval=4)
    with torch.inference_mode():
        plain = unet(x, t, encoder_hidden_states=context, return_dict=False)[0]
        full = wrapped(x, t, encoder_hidden_states=context)[0]
        shallow = wrapped(x, t, encoder_hidden_states=context)[0]
    assert wrapped.full_calls == 1 and wrapped.calls == 2
    assert torch.equal(full, plain)
    assert torch.equal(shallow, plain)


def test_the_full_unet_runs_every_n_th_call_and_when_the_batch_changes() -> None:
    unet = tiny_model().unet
    x, t, context = _inputs()
    wrapped = DeepCacheUNet(unet, interval=3)
    with torch.inference_mode():
        for _ in range(7):  # full at calls 0, 3, 6
            wrapped(x, t, encoder_hidden_states=context)
        assert wrapped.full_calls == 3
        wrapped(x[:1], t, encoder_hidden_states=context[:1])  # -C 1 batch: no stale features
    assert wrapped.full_calls == 4


def test_deepcache_1_is_exactly_the_plain_image(gen: Generator) -> None:
    assert np.array_equal(_run(gen, deepcache=1), _run(gen))
    x, t, context = _inputs()
    every = DeepCacheUNet(tiny_model().unet, interval=1)
    with torch.inference_mode():
        outs = [every(x * k, t, encoder_hidden_states=context)[0] for k in (1.0, 0.5)]
        plain = tiny_model().unet(x * 0.5, t, encoder_hidden_states=context)[0]
    assert every.full_calls == 2 and torch.equal(outs[1], plain)


@pytest.mark.parametrize("changes", [
    {},  # txt2img, CFG batch of two
    {"cfg_scale": 1.0},  # no CFG: a batch of one
    {"init_img": "INIT", "strength": 0.6},  # img2img: the sliced schedule
])
def test_deepcache_changes_pixels_and_reproduces_by_seed(gen: Generator, tmp_path: Path,
                                                         changes: dict) -> None:
    if changes.get("init_img") == "INIT":
        changes = {**changes, "init_img": str(write_image(tmp_path, 0))}
    plain = _run(gen, **changes)
    first = _run(gen, deepcache=3, **changes)
    assert np.array_equal(first, _run(gen, deepcache=3, **changes))
    assert not np.array_equal(first, plain)


def test_deepcache_runs_on_an_inpainting_unet(tmp_path: Path) -> None:
    gen = Generator(as_model(inpaint_parts()))
    init = str(write_image(tmp_path, 1))
    first = _run(gen, deepcache=2, init_img=init, strength=0.8)
    assert np.array_equal(first, _run(gen, deepcache=2, init_img=init, strength=0.8))
    assert not np.array_equal(first, _run(gen, init_img=init, strength=0.8))


def test_a_unet_deepcache_cannot_skip_is_refused_in_one_line() -> None:
    odd = SimpleNamespace(config=SimpleNamespace(class_embed_type="timestep"),
                          up_blocks=[SimpleNamespace(resnets=[], upsamplers=None)], conv_in=None)
    with pytest.raises(RequestError) as info:
        check_accelerators(odd, Request(deepcache=2))
    assert str(info.value) == ("--deepcache 2: the UNet uses class_embed_type, which it cannot "
                               "skip; expected no --deepcache with this model")
    check_accelerators(odd, Request())  # off: nothing to refuse


# ---- ToMe ----------------------------------------------------------------------------------

def _patched_blocks(unet: torch.nn.Module) -> list[str]:
    return [name for name, module in unet.named_modules()
            if type(module).__name__ == "ToMeBlock" or hasattr(module, "_tome_info")]


def test_tome_0_is_exactly_the_plain_image(gen: Generator) -> None:
    assert np.array_equal(_run(gen, tome=0.0), _run(gen))


def test_tome_changes_pixels_reproduces_by_seed_and_unpatches(gen: Generator) -> None:
    plain = _run(gen)
    torch.manual_seed(1)  # ToMe's random merge targets come from the image's seed, not torch's
    first = _run(gen, tome=0.5)
    torch.manual_seed(2)
    assert np.array_equal(first, _run(gen, tome=0.5))
    assert not np.array_equal(first, plain)
    assert _patched_blocks(gen.model.unet) == []
    assert np.array_equal(_run(gen), plain)  # the shared UNet is plain again


def test_tome_is_removed_after_an_error() -> None:
    unet = tiny_model().unet
    with pytest.raises(KeyboardInterrupt):
        with accelerated_unet(unet, Request(tome=0.5, deepcache=2), seed=1) as wrapped:
            assert isinstance(wrapped, DeepCacheUNet) and _patched_blocks(unet)
            raise KeyboardInterrupt
    assert _patched_blocks(unet) == []


def test_tome_and_deepcache_together_reproduce(gen: Generator) -> None:
    first = _run(gen, tome=0.5, deepcache=2, iterations=1)
    assert np.array_equal(first, _run(gen, tome=0.5, deepcache=2))
    assert not np.array_equal(first, _run(gen, deepcache=2))


# ---- the switches --------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("a --deepcache 0", "--deepcache: 0 is out of range; expected a whole number from 1 (off) "
                        "to 1000"),
    ("a --deepcache 2.5", "--deepcache: '2.5' is not a whole number; expected a whole number "
                          "from 1 (off) to 1000"),
    ("a --tome 0.8", "--tome: 0.8 is out of range; expected 0 (off), or a merge ratio from "
                     "0.01 to 0.75"),
    ("a --tome -0.1", "--tome: -0.1 is out of range; expected 0 (off), or a merge ratio from "
                      "0.01 to 0.75"),
    ("a --tome half", "--tome: 'half' is not a number; expected 0 (off), or a merge ratio "
                      "from 0.01 to 0.75"),
])
def test_bad_values_are_one_line_naming_the_range(line: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_line(line, Request())
    assert str(info.value) == message


def test_the_command_holds_the_switches_and_reads_back() -> None:
    request = Request(prompt=PROMPT, seed=3, deepcache=3, tome=0.5)
    command = format_command(request)
    assert command.endswith("-A k_lms --deepcache 3 --tome 0.5")
    assert parse_line(command, Request()).request == request
    assert "--deepcache" not in format_command(Request(prompt=PROMPT, seed=3))


def test_help_lists_both() -> None:
    text = format_help("all")
    assert "--deepcache N" in text and "--tome R" in text
    assert "0 (off), or a merge ratio from 0.01 to 0.75" in format_help("generation")


def test_completion_offers_both(tmp_path: Path) -> None:
    from test_repl import completions, make_session  # the REPL's own prompt session

    session = make_session(tmp_path)[0]
    assert completions(session, "a cat --dee") == ["--deepcache "]
    assert "--tome " in completions(session, "a cat --to")


# ---- metadata and !fetch -------------------------------------------------------------------

def test_metadata_records_them_only_when_on() -> None:
    on = Request(prompt=PROMPT, seed=3, deepcache=4, tome=0.25)
    meta = sd_metadata(on, {})
    assert meta["image"]["deepcache"] == 4 and meta["image"]["tome"] == 0.25
    assert sd_metadata_request("x.png", meta) == on
    text = a1111_parameters(on, {})
    assert "Token merging ratio: 0.25, DeepCache: 4" in text
    off = sd_metadata(Request(prompt=PROMPT, seed=3), {})["image"]
    assert "deepcache" not in off and "tome" not in off
    assert "Token merging" not in a1111_parameters(Request(prompt=PROMPT, seed=3), {})


@pytest.mark.parametrize("chunk", ["Dream", "sd-metadata", "parameters", "invokeai_metadata"])
def test_fetch_of_each_chunk_gives_the_command_that_remakes_the_image(
        gen: Generator, tmp_path: Path, chunk: str) -> None:
    made = gen.generate(Request(prompt=PROMPT, steps=4, seed=21, deepcache=2, tome=0.5))[0]
    command = format_command(made.request)
    full = save_image(tmp_path, 1, made.seed, made.image, command,
                      invokeai.sd_metadata(made), a1111.a1111_parameters(made))
    only = tmp_path / f"only-{chunk}.png"
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text(chunk, read_text_chunks(full)[chunk])
    made.image.save(only, pnginfo=info)
    fetched = fetch(only)
    again = parse_line(fetched.command, Request()).request
    assert (again.deepcache, again.tome) == (2, 0.5), fetched
    assert not [note for note in fetched.notes if "merging" in note or "deepcache" in note]
    assert np.array_equal(_pixels(gen.generate(again)[0].image), _pixels(made.image))


def test_an_a1111_ratio_dreamline_cannot_run_is_named_not_refused(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, "
                                "Size: 512x512, Token merging ratio: 0.9")
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    fetched = fetch(path)
    assert "--tome" not in fetched.command
    assert any("token merging ratio 0.9" in note for note in fetched.notes)
