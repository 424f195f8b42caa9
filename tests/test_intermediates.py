"""--save_intermediates end to end on the tiny model: which steps are written, the strip, the
per-model preview fit, --decode_intermediates, the start cell, and one scheduler per command."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from core_fixtures import SIZE, generate, tiny_model, write_image
from dreamline.core import Generator, StartInfo, StepInfo, fit_preview_map
from dreamline.core import generator as generator_module
from dreamline.core import latents as latent_ops
from dreamline.repl.runner import Runner
from dreamline.repl.settings import Settings
from dreamline.outputs import strip_zoom
from dreamline.request import Request

STEPS = 5
STRENGTH = 0.6  # floor(0.6 * 5) = 3 steps run, 2 skipped
SEED = 7
# The published SD 1.x latent -> RGB matrix the preview used before it was fitted per model.
SD1_LATENT_RGB = torch.tensor([
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
])


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(tiny_model(), report=lambda line: None)


@pytest.fixture(scope="module")
def init_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image(tmp_path_factory.mktemp("init"), 0)


def _run(gen: Generator, outdir: Path, request: Request) -> list[Path]:
    runner = Runner(Settings(outdir=outdir), lambda: gen, say=lambda line: None,
                    progress_stream=io.StringIO())  # as if loaded: the tiny model
    saved: list[Path] = []
    runner.run(request, lambda path, seed: saved.append(path))
    return saved


def _folder(outdir: Path) -> Path:
    folders = list((outdir / "intermediates").iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


# steps run: img2img 3 (after 2 skipped), txt2img 5; cells = start + every N-th + the last
@pytest.mark.parametrize("every, mode, names", [
    (1, "img2img", ["step-0000", "step-0001", "step-0002", "step-0003"]),
    (2, "img2img", ["step-0000", "step-0002", "step-0003"]),
    (3, "img2img", ["step-0000", "step-0003"]),
    (1, "txt2img", ["step-0000", "step-0001", "step-0002", "step-0003", "step-0004",
                    "step-0005"]),
    (2, "txt2img", ["step-0000", "step-0002", "step-0004", "step-0005"]),
    (3, "txt2img", ["step-0000", "step-0003", "step-0005"]),
])
def test_files_and_strip(gen: Generator, init_path: Path, tmp_path: Path, every: int,
                         mode: str, names: list[str]) -> None:
    extra: dict[str, Any] = {"init_img": str(init_path), "strength": STRENGTH} \
        if mode == "img2img" else {}
    saved = _run(gen, tmp_path, Request(prompt="a fox", steps=STEPS, seed=SEED,
                                        save_intermediates=every, **extra))
    folder = _folder(tmp_path)
    assert folder.name == saved[0].name[:-len(".png")]  # NNNNNN.<seed>, like the image
    assert sorted(p.name for p in folder.iterdir()) == [f"{n}.png" for n in names] + ["strip.png"]
    for name in names:  # previews are blown up to the image's size
        assert Image.open(folder / f"{name}.png").size == (SIZE, SIZE)
    strip = Image.open(folder / "strip.png")
    side = SIZE * strip_zoom(SIZE)
    assert strip.width == len(names) * side and strip.height > side  # labels in a band below
    # each cell of the strip is its step file, blown up
    for index, name in enumerate(names):
        cell = strip.crop((index * side, 0, (index + 1) * side, side))
        own = Image.open(folder / f"{name}.png").resize((side, side), Image.Resampling.NEAREST)
        assert np.array_equal(_pixels(cell), _pixels(own)), name


def test_decode_intermediates_gives_full_decodes(gen: Generator, init_path: Path,
                                                 tmp_path: Path) -> None:
    request = Request(prompt="a fox", steps=STEPS, seed=SEED, init_img=str(init_path),
                      strength=STRENGTH, save_intermediates=2)
    decoded_out, preview_out = tmp_path / "decoded", tmp_path / "preview"
    saved = _run(gen, decoded_out, request.with_changes(decode_intermediates=True))
    _run(gen, preview_out, request)
    final = _pixels(Image.open(saved[0]))
    last = _pixels(Image.open(_folder(decoded_out) / "step-0003.png"))
    assert np.array_equal(last, final)  # no mask: nothing pasted back, the last step is it
    preview = _pixels(Image.open(_folder(preview_out) / "step-0003.png"))
    assert not np.array_equal(preview, final)  # by default only a cheap estimate


def _start_cell(gen: Generator, outdir: Path, decode: bool, **extra: Any) -> np.ndarray:
    _run(gen, outdir, Request(prompt="a fox", steps=STEPS, seed=SEED, save_intermediates=1,
                              decode_intermediates=decode, **extra))
    return _pixels(Image.open(_folder(outdir) / "step-0000.png"))


def test_start_cell_img2img_is_closer_to_the_init_image(gen: Generator, init_path: Path,
                                                        tmp_path: Path) -> None:
    """At low strength the start is the init image with a little noise: its cell is nearer the
    init image than txt2img's pure-noise start.  Previews are compared with the init image;
    full decodes with the tiny VAE's own round trip of it, since a random-weight VAE does not
    give the picture back."""
    img2img = {"init_img": str(init_path), "strength": 0.2}  # starts at step 4 of 5
    init = _pixels(Image.open(init_path))
    near = np.abs(_start_cell(gen, tmp_path / "p-img2img", False, **img2img) - init).mean()
    far = np.abs(_start_cell(gen, tmp_path / "p-txt2img", False) - init).mean()
    assert near < 0.75 * far, (near, far)
    with torch.inference_mode():
        seen = gen.decode(latent_ops.encode(gen.model.vae, Image.open(init_path).convert("RGB"))
                          .mean * gen.model.scaling_factor)
    round_trip = _pixels(seen)
    near = np.abs(_start_cell(gen, tmp_path / "d-img2img", True, **img2img) - round_trip).mean()
    far = np.abs(_start_cell(gen, tmp_path / "d-txt2img", True) - round_trip).mean()
    assert near < far, (near, far)


def test_on_start_is_the_noised_init_and_on_step_stays_once_per_step(
        gen: Generator, init_path: Path) -> None:
    starts: list[StartInfo] = []
    steps: list[StepInfo] = []
    request = Request(prompt="a fox", steps=STEPS, seed=SEED, init_img=str(init_path),
                      strength=STRENGTH, iterations=2, sampler="k_euler")
    generate(gen, request, on_step=steps.append, on_start=starts.append)
    assert [(s.start_step, s.steps, s.steps_run) for s in starts] == [(2, STEPS, 3)] * 2
    assert [s.index for s in steps] == [0, 1, 2] * 2
    assert steps[0].sigma == pytest.approx(starts[0].sigma)  # the first step starts there
    txt: list[StartInfo] = []
    generate(gen, Request(prompt="a fox", steps=STEPS, seed=SEED, sampler="k_euler"),
                 on_start=txt.append)
    assert txt[0].start_step == 0 and txt[0].sigma > starts[0].sigma  # pure noise is noisier
    # img2img starts from init latents plus a little noise: much nearer them than noise is
    init_latents = latent_ops.encode(gen.model.vae, Image.open(init_path).convert("RGB")
                                     ).mean.detach() * gen.model.scaling_factor
    near = float((starts[0].latents - init_latents).abs().mean())
    far = float((txt[0].latents - init_latents).abs().mean())
    assert near < far / 2, (near, far)


class LinearVAE(torch.nn.Module):
    """A VAE stand-in whose latents are a known linear function of each 4x4 patch's mean
    colour (and whose decoder inverts it), with a scaling factor that is not SD's."""

    factor = 4

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # for next(vae.parameters())
        self.mix = torch.tensor([[0.9, -0.3, 0.2, 0.5], [0.1, 0.8, -0.4, 0.3],
                                 [-0.2, 0.4, 0.7, -0.6]])  # pixel RGB (in [-1, 1]) -> 4
        self.offset = torch.tensor([0.3, -0.2, 0.1, 0.05])
        self.config = SimpleNamespace(scaling_factor=0.5)

    def encode(self, pixels: torch.Tensor) -> Any:
        patches = torch.nn.functional.avg_pool2d(pixels.float(), self.factor)
        mean = torch.einsum("nrhw,rc->nchw", patches, self.mix) + self.offset[:, None, None]
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=mean, std=torch.zeros_like(mean)))

    def decode(self, latents: torch.Tensor, return_dict: bool = False) -> tuple[torch.Tensor]:
        unmix = torch.linalg.pinv(self.mix)  # 4 -> 3
        rgb = torch.einsum("nchw,cr->nrhw", latents - self.offset[:, None, None], unmix)
        return (rgb.repeat_interleave(self.factor, 2).repeat_interleave(self.factor, 3),)


@pytest.mark.parametrize("colour", [(200, 60, 40), (30, 180, 90), (250, 250, 10), (0, 0, 0)])
def test_fitted_preview_recovers_colours_of_a_linear_vae(colour: tuple[int, int, int]) -> None:
    """The fit keeps scaling, patches and bias consistent: with a VAE whose latents really are
    linear in colour, the preview of an encoded solid colour is that colour."""
    vae = LinearVAE()
    preview = fit_preview_map(vae, LinearVAE.factor)
    image = Image.new("RGB", (32, 16), colour)
    with torch.inference_mode():
        dist = latent_ops.encode(vae, image)
    loop_latents = dist.mean * vae.config.scaling_factor  # as the sampler holds them
    shown = latent_ops.latents_to_preview_rgb(loop_latents, preview)
    assert shown.size == (32, 16)
    assert np.abs(_pixels(shown) - np.array(colour)).max() <= 1.0


def _cells(image: Image.Image, factor: int) -> np.ndarray:
    array = _pixels(image)
    height, width, _ = array.shape
    return array.reshape(height // factor, factor, width // factor, factor, 3).mean(axis=(1, 3))


@pytest.mark.parametrize("colour", [(200, 60, 40), (30, 180, 90), (128, 128, 128)])
def test_fitted_preview_matches_the_tiny_models_decode(gen: Generator,
                                                       colour: tuple[int, int, int]) -> None:
    """On the random-weight tiny VAE every solid colour comes back as much the same colour, so
    the preview is held to what the model itself decodes the encoded colour to -- and it is
    closer to that than the fixed SD 1.x matrix, which is why that matrix was dropped."""
    factor = gen.model.vae_scale_factor
    with torch.inference_mode():
        dist = latent_ops.encode(gen.model.vae, Image.new("RGB", (SIZE, SIZE), colour))
    latents = dist.mean * gen.model.scaling_factor
    decoded = _cells(gen.decode(latents), factor)
    fitted = _cells(gen.preview(latents), factor)
    sd1 = (torch.einsum("chw,cr->hwr", latents[0], SD1_LATENT_RGB) / 2 + 0.5).clamp(0, 1)
    sd1_cells = sd1.numpy() * 255
    fitted_off = np.abs(fitted.mean(axis=(0, 1)) - decoded.mean(axis=(0, 1))).max()
    sd1_off = np.abs(sd1_cells.mean(axis=(0, 1)) - decoded.mean(axis=(0, 1))).max()
    assert fitted_off <= 4.0 and sd1_off > 3 * fitted_off, (fitted_off, sd1_off)
    assert np.abs(fitted - decoded).mean() < np.abs(sd1_cells - decoded).mean()


def test_preview_map_fitted_once_per_generator(gen: Generator) -> None:
    assert gen.preview_map is gen.preview_map


def test_scheduler_built_once_per_command_and_fresh_per_image(
        gen: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = generator_module.make_scheduler

    def counting(sampler: str, config: dict[str, Any], **options: Any) -> Any:
        built.append(sampler)
        return real(sampler, config, **options)

    monkeypatch.setattr(generator_module, "make_scheduler", counting)
    results = generate(gen, Request(prompt="a fox", steps=3, seed=SEED, iterations=2,
                                   sampler="k_dpm_2_a"))
    assert built == ["k_dpm_2_a"]
    for result in results:  # each image still equals a run of its own (a fresh state)
        again = generate(gen, result.request)[0]
        assert np.array_equal(_pixels(again.image), _pixels(result.image))


def test_strip_labels_number_steps_in_the_schedule_as_the_start_is() -> None:
    from types import SimpleNamespace

    from dreamline.repl.steps import StepSaver

    saver = StepSaver(SimpleNamespace(preview=lambda latents: latents), every=3)
    saver.start(SimpleNamespace(start_step=3, steps=10, latents="x0"))
    for index in range(7):  # img2img -s10 -f0.7: schedule steps 4..10 run
        saver.maybe_keep(SimpleNamespace(index=index, total=7, latents=f"x{index + 1}"))
    assert [label for _, label, _ in saver.kept] == [
        "start (step 3 of 10)", "step 6 of 10", "step 9 of 10", "step 10 of 10"]
