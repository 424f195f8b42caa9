"""Seeds, initial noise and variations.

Noise is always drawn on the CPU in float32 from a per-request ``torch.Generator`` and then moved
to the model's device and dtype, so one seed gives the same starting noise on CPU, CUDA and MPS.
Nothing here touches torch's global random state.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import torch

from dreamline.request import SEED_MAX

# Above this |cos| between two noises, slerp is numerically unstable and a straight line is used
# (the reference's threshold).
PARALLEL_COS = 0.9995


def resolve_seed(seed: int | None) -> int:
    """The request's seed, or a fresh random 32-bit one when none was given."""
    if seed is not None:
        return seed
    return secrets.randbelow(SEED_MAX + 1)


def derive_seed(seed: int, index: int, purpose: str = "image") -> int:
    """A reproducible 32-bit seed for image ``index`` of a command seeded with ``seed``.

    ``purpose`` keeps the image seeds (-n) and the variation seeds (-v) apart.  Image 0 keeps
    the seed itself so ``-S 42 -n 3`` starts with exactly the ``-S 42`` image.
    """
    if purpose == "image" and index == 0:
        return seed
    digest = hashlib.sha256(f"dreamline/{purpose}/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for one image; every random draw of that image comes from it."""
    return torch.Generator(device="cpu").manual_seed(seed)


def draw_noise(generator: torch.Generator, shape: Sequence[int], device: torch.device | str,
               dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise drawn on the CPU in float32, then moved: device-independent."""
    noise = torch.randn(tuple(shape), generator=generator, device="cpu", dtype=torch.float32)
    return noise.to(device=device, dtype=dtype)


def seed_noise(seed: int, shape: Sequence[int], device: torch.device | str,
               dtype: torch.dtype) -> torch.Tensor:
    """The noise a seed stands for when used as a variation target (a fresh generator)."""
    return draw_noise(seeded_generator(seed), shape, device, dtype)


def slerp(amount: float, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from ``start`` (amount 0) to ``end`` (amount 1).

    Gaussian noise lives near a sphere; a straight blend would shrink its norm and give washed-out
    images, so variations move along the sphere instead.  Computed in float64 for stability;
    amount 0 returns ``start`` unchanged so ``-v 0`` is exactly the plain image.
    """
    if amount == 0:
        return start
    a = start.to(torch.float64)
    b = end.to(torch.float64)
    cos = float((a * b).sum() / (a.norm() * b.norm()))
    if abs(cos) > PARALLEL_COS:
        mixed = (1.0 - amount) * a + amount * b
    else:
        theta = torch.acos(torch.tensor(cos, dtype=torch.float64))
        sin_theta = torch.sin(theta)
        mixed = (torch.sin((1.0 - amount) * theta) / sin_theta) * a \
            + (torch.sin(amount * theta) / sin_theta) * b
    return mixed.to(dtype=start.dtype)


def blend_variations(base: torch.Tensor, with_variations: Sequence[tuple[int, float]]
                     ) -> torch.Tensor:
    """Blend each ``(seed, weight)`` target noise into ``base``, in the order given (-V)."""
    noise = base
    for seed, weight in with_variations:
        target = seed_noise(seed, base.shape, base.device, base.dtype)
        noise = slerp(weight, noise, target)
    return noise
