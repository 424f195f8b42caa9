"""Golden latent slices: any unintended numeric change in the core shows here, per sampler.

diffusers-style: the bottom-right 3x3 of the last latent channel after the last step, on the
tiny model, recorded once from the core as it stood (before the schedule/loop split) and compared
with a tolerance of 1e-4.  A deliberate change of the maths re-records them and says why.
"""

from __future__ import annotations

import pytest
import torch

from core_fixtures import generate, tiny_model, write_image
from dreamline.core import Generator, StepInfo
from dreamline.request import SAMPLERS, Request

TOLERANCE = 1e-4
SEED = 31
STEPS = 5
STRENGTH = 0.6  # img2img: 3 of the 5 steps

# "<sampler>/<txt2img|img2img>[/karras]": latents[0, -1, -3:, -3:], row by row
GOLDEN: dict[str, tuple[float, ...]] = {
    "ddim/txt2img": (5.729345, 2.871634, 2.459217, -2.443289, 7.879596,
        0.280345, -3.182149, 2.582928, 4.819464),
    "ddim/img2img": (0.194418, 0.488551, -0.895619, -0.201906, 2.146939,
        -1.754298, -1.448306, 1.797253, 0.762041),
    "plms/txt2img": (4.893135, 3.792942, 2.426793, -2.266562, 6.881198,
        -0.115333, -3.306447, 2.574324, 4.808228),
    "plms/img2img": (-0.001557, 0.682196, -1.003166, -0.187033, 2.052265,
        -1.842674, -1.404973, 1.824944, 0.698818),
    "k_lms/txt2img": (15.746897, 7.419923, 6.701815, -4.500976, 21.905863,
        0.490496, -8.578611, 6.703284, 14.150171),
    "k_lms/txt2img/karras": (15.600214, 7.879218, 6.761937, -4.741362, 21.478706,
        0.415926, -8.667402, 6.796003, 13.979375),
    "k_lms/img2img": (0.117814, 0.812873, -1.405361, 0.051891, 2.795545,
        -2.596476, -1.850142, 2.362620, 0.807663),
    "k_euler/txt2img": (16.016058, 7.350345, 6.772456, -4.523478, 22.054787,
        0.602882, -8.583580, 6.722610, 14.170444),
    "k_euler/txt2img/karras": (16.038603, 7.690686, 6.868521, -4.733042, 21.788029,
        0.621819, -8.644341, 6.806870, 14.050901),
    "k_euler/img2img": (0.202885, 0.799163, -1.365655, 0.024917, 2.852738,
        -2.556904, -1.853259, 2.394503, 0.875070),
    "k_euler_a/txt2img": (18.421589, 5.425195, 8.728476, -3.940980, 29.816004,
        -4.855864, -11.562815, 12.837258, 14.553204),
    "k_euler_a/txt2img/karras": (18.008461, 5.317685, 8.133965, -4.965073, 30.270142,
        -5.842937, -11.616921, 13.667432, 14.924669),
    "k_euler_a/img2img": (0.535937, 0.733124, -1.071952, 0.623206, 2.491729,
        -2.567060, -1.135561, 2.938444, 0.445148),
    "k_heun/txt2img": (12.076552, 8.971426, 5.851998, -4.598649, 19.347988,
        -1.337092, -8.781604, 6.595695, 13.620405),
    "k_heun/txt2img/karras": (12.420104, 9.204669, 6.087155, -4.866977, 19.402025,
        -1.060727, -8.801799, 6.713220, 13.640842),
    "k_heun/img2img": (-0.099469, 0.753618, -1.450978, 0.013136, 2.722613,
        -2.637163, -1.798140, 2.390406, 0.732902),
    "k_dpm_2/txt2img": (13.324081, 11.315799, 7.085456, -5.770053, 18.522572,
        -0.715281, -8.602273, 6.900093, 13.394818),
    "k_dpm_2/txt2img/karras": (13.705689, 10.421033, 7.084583, -5.584754, 18.349527,
        -0.617681, -8.455056, 6.663574, 13.611281),
    "k_dpm_2/img2img": (-0.315826, 0.816426, -1.431396, -0.075424, 2.587704,
        -2.652176, -1.757729, 2.429956, 0.685159),
    "k_dpm_2_a/txt2img": (8.650195, 9.752168, 6.415195, -4.239215, 22.737299,
        -9.902770, -11.791070, 12.622730, 13.288157),
    "k_dpm_2_a/txt2img/karras": (9.251484, 9.609134, 6.259293, -5.586570, 23.719036,
        -10.297726, -11.758659, 13.555121, 13.823300),
    "k_dpm_2_a/img2img": (0.106560, 0.813460, -1.317187, 0.780639, 2.094292,
        -2.808437, -1.168421, 2.814628, 0.067290),
}


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(tiny_model())


@pytest.fixture(scope="module")
def init_img(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_image(tmp_path_factory.mktemp("golden"), 0))


def test_every_sampler_and_mode_has_a_golden_slice() -> None:
    expected = {f"{name}/{mode}" for name in SAMPLERS for mode in ("txt2img", "img2img")}
    expected |= {f"{name}/txt2img/karras" for name in SAMPLERS if name.startswith("k_")}
    assert set(GOLDEN) == expected


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_last_latents_match_the_golden_slice(gen: Generator, init_img: str, key: str) -> None:
    sampler, mode, *schedule = key.split("/")
    extra: dict[str, object] = {"init_img": init_img, "strength": STRENGTH} \
        if mode == "img2img" else {}
    seen: list[StepInfo] = []
    generate(gen, Request(prompt="a lighthouse", steps=STEPS, seed=SEED, sampler=sampler,
                          karras=bool(schedule), **extra), on_step=seen.append)
    got = seen[-1].latents[0, -1, -3:, -3:].flatten()
    expected = torch.tensor(GOLDEN[key])
    assert torch.allclose(got, expected, rtol=0, atol=TOLERANCE), (
        f"{key}: {[round(float(v), 6) for v in got]}")
