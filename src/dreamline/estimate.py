"""How long a request will take and how much memory it will use, from throughput measured on
this machine (torch-free: the maths and the line; the measurements are kept by throughput.py).

A size never measured is estimated from the measured sizes of the same model: between two sizes
by a power law, past the largest from ``a*x + b*x**2`` through the two largest (x = latent
pixels: convolutions grow with x, attention faster), so such an estimate is called rough.  With
nothing measured at all, the runner times a few UNet calls at small sizes once (``probe``); the
estimate is "unknown" rather than invented when even that is impossible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dreamline.throughput import Sample, Size
from dreamline.plural import counted

ANNOUNCE_SECONDS = 10.0  # a request expected to take longer gets the estimate line
CONFIRM_SECONDS = 300.0  # longer than this: asked first at a terminal, a warning otherwise
PROBE_CALL_SECONDS = 1.0  # the probe's budget per call for a short run (see ``probe``)
PROBE_MAX_CALL_SECONDS = 5.0  # ... and for a long one
PROBE_START_SIDE = 8  # the probe's first latent size: the largest side at most this
PROBE_BEYOND = 4.0  # a size with more than this many times the pixels of every size measured
# is probed again: attention grows with the square of the pixels, which small sizes hide
# Samplers that call the UNet twice per sampling step (the last step once).
TWO_CALL_SAMPLERS = frozenset({"k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_sde"})


def unet_calls(sampler: str, steps_run: int) -> int:
    """UNet calls of ``steps_run`` sampling steps: Heun/DPM2/DPM++ SDE two per step but the
    last, PLMS one extra at its start (with two or more steps), the others one."""
    if sampler in TWO_CALL_SAMPLERS:
        return max(1, 2 * steps_run - 1)
    if sampler == "plms" and steps_run >= 2:
        return steps_run + 1
    return steps_run


# ---- the maths -------------------------------------------------------------------------------

def scaled(points: Mapping[int, float], x: int) -> tuple[float, str] | None:
    """The value at ``x`` latent pixels from values measured at other pixel counts, and how it
    was found: "measured", "interpolated" (power law between the two neighbours), "extrapolated"
    (``a*x + b*x**2``, a, b >= 0, through the two largest), or "scaled" (in proportion to the
    pixels from the one nearest: a rough lower bound above it).  None: nothing measured."""
    if not points:
        return None
    if x in points:
        return points[x], "measured"
    xs = sorted(points)
    below = [p for p in xs if p < x]
    above = [p for p in xs if p > x]
    if below and above:
        low, high = below[-1], above[0]
        t_low, t_high = points[low], points[high]
        if t_low <= 0 or t_high <= 0:
            return t_low + (t_high - t_low) * (x - low) / (high - low), "interpolated"
        power = math.log(t_high / t_low) / math.log(high / low)
        return t_low * (x / low) ** power, "interpolated"
    if above:  # smaller than every size measured
        return points[above[0]] * x / above[0], "scaled"
    if len(below) < 2:
        return points[below[-1]] * x / below[-1], "scaled"
    x1, x2 = below[-2], below[-1]
    t1, t2 = points[x1], points[x2]
    # t = a*x + b*x^2 through (x1, t1) and (x2, t2)
    b = (t2 / x2 - t1 / x1) / (x2 - x1)
    a = t1 / x1 - b * x1
    if b < 0:  # grows slower than in proportion: keep the proportion (never shrink)
        a, b = t2 / x2, 0.0
    elif a < 0:  # grows faster than a square of the pixels: keep the square
        a, b = 0.0, t2 / (x2 * x2)
    return a * x + b * x * x, "extrapolated"


def needs_probe(samples: Mapping[Size, Sample], target: Size) -> bool:
    """Whether to time a few UNet calls before estimating ``target`` (latent size): nothing of
    this model was ever probed, or ``target`` is more than PROBE_BEYOND times the pixels of the
    largest size measured (small sizes hide the attention's square growth: the demo model's
    512x512 was once estimated at 5 min from 64x64 runs and took over 30)."""
    if target in samples:
        return False
    if not any(sample.probe for sample in samples.values()):
        return True
    largest = max(w * h for w, h in samples)
    return target[0] * target[1] > PROBE_BEYOND * largest


def probe_sizes(target: Size, start_side: int = PROBE_START_SIDE) -> list[Size]:
    """The latent sizes a probe may time, smallest first, ending at ``target``: ``target``
    halved (keeping its aspect) until its larger side is at most ``start_side``."""
    sizes = [target]
    width, height = target
    while max(width, height) > start_side and min(width, height) > 1:
        width, height = max(1, math.ceil(width / 2)), max(1, math.ceil(height / 2))
        sizes.append((width, height))
    return sizes[::-1]


def probe(time_call: Callable[[Size, bool], float], target: Size, calls: int, *,
          start_side: int = PROBE_START_SIDE) -> dict[Size, float]:
    """Seconds per UNet call at growing sizes up to ``target``, for a run of ``calls`` UNet
    calls there.  ``time_call(size, warm)`` times one call at a latent size (after an untimed
    one when ``warm``).  The two smallest sizes are always timed; a larger one only while it is
    expected to take at most the budget: 1% of the run as the sizes timed so far predict it
    (in proportion to the pixels: a lower bound), between PROBE_CALL_SECONDS and
    PROBE_MAX_CALL_SECONDS.  A call expected to take over PROBE_CALL_SECONDS is not warmed."""
    timed: dict[Size, float] = {}
    target_x = target[0] * target[1]
    for size in probe_sizes(target, start_side):
        expected = 0.0
        if timed:
            points = {w * h: t for (w, h), t in timed.items()}
            found = scaled(points, size[0] * size[1])
            expected = found[0] if found is not None else 0.0
            largest = max(points)
            run = calls * points[largest] * target_x / largest
            budget = min(PROBE_MAX_CALL_SECONDS, max(PROBE_CALL_SECONDS, run / 100))
            if len(timed) >= 2 and expected > budget:
                break
        timed[size] = time_call(size, expected <= PROBE_CALL_SECONDS)
    return timed


@dataclass(frozen=True)
class Plan:
    """What one request will run: for the estimate and its line."""

    sampler: str
    steps: int  # the full schedule (-s)
    steps_run: int  # sampling steps that will run (img2img: floor(strength * steps))
    start_step: int  # schedule steps skipped (0: from pure noise)
    sigma: float | None  # the noise level the init image is inserted at (None: unknown)
    images: int  # -n
    size: Size  # image pixels (width, height)
    latent: Size  # latent pixels
    img2img: bool

    @property
    def calls(self) -> int:
        return unet_calls(self.sampler, self.steps_run)


@dataclass(frozen=True)
class Estimate:
    """The expected run: ``seconds`` (None: unknown) and how it was found ("measured",
    "interpolated", "extrapolated", "scaled", "unknown"); ``decode_known``: the time outside
    the sampling loop is in it; ``peak_bytes`` (None: unknown) and ``memory_how`` ("measured",
    "scaled", "formula")."""

    seconds: float | None
    how: str
    decode_known: bool = False
    peak_bytes: int | None = None
    memory_how: str = "formula"

    @property
    def rough(self) -> bool:
        return self.how in ("extrapolated", "scaled")


def estimate(plan: Plan, samples: Mapping[Size, Sample], formula_bytes: int | None = None
             ) -> Estimate:
    """The time and peak memory of ``plan`` from the measurements of its model's group;
    ``formula_bytes``: the memory to give when no size of the group has a measured peak."""
    x = plan.latent[0] * plan.latent[1]
    calls = {w * h: s.call_seconds for (w, h), s in sorted(samples.items(), key=_runs_last)}
    per_call = scaled(calls, x)
    extras = {w * h: s.extra_seconds for (w, h), s in samples.items()
              if s.extra_seconds is not None}
    extra = scaled(extras, x)
    seconds = None
    how = "unknown"
    if per_call is not None:
        seconds = plan.images * (plan.calls * per_call[0] + (extra[0] if extra else 0.0))
        how = per_call[1]
    peaks = {w * h: float(s.peak_bytes) for (w, h), s in samples.items()
             if s.peak_bytes is not None}
    peak: int | None = formula_bytes
    memory_how = "formula"
    if x in peaks:
        peak, memory_how = int(peaks[x]), "measured"
    elif peaks:
        nearest = min(peaks, key=lambda p: abs(math.log(p / x)))
        scaled_peak = int(peaks[nearest] * x / nearest)
        # A small size's peak growth is mostly what the allocator could not reuse, and the
        # attention grows faster than the pixels: scaled up, it is never below the formula.
        if x <= nearest or formula_bytes is None or scaled_peak >= formula_bytes:
            peak, memory_how = scaled_peak, "scaled"
    return Estimate(seconds, how, extra is not None, peak, memory_how)


def _runs_last(item: tuple[Size, Sample]) -> bool:
    """Sort key: probes first, so a run at the same pixel count wins."""
    return not item[1].probe


def memory_formula(latent: Size, *, unet_channels: tuple[int, ...],
                   vae_channels: tuple[int, ...], vae_factor: int, value_bytes: int,
                   batch: int = 2) -> int:
    """A rough peak memory (bytes) from the latent size, for a model never measured: the UNet's
    activations and skip connections at each level (``batch`` 2 for guidance; about eight
    tensors of the level's channels live at once) plus the VAE decoder's at each of its levels
    (about three, from the latent size up to the image)."""
    pixels = latent[0] * latent[1]
    unet = sum(8 * batch * channels * pixels // 4 ** level
               for level, channels in enumerate(unet_channels))
    levels = len(vae_channels)
    vae = sum(3 * channels * pixels * (vae_factor * vae_factor) // 4 ** (levels - 1 - level)
              for level, channels in enumerate(vae_channels))
    return (unet + vae) * value_bytes


# ---- the line ------------------------------------------------------------------------------

def format_duration(seconds: float) -> str:
    """'8 s', '45 s', '17 min', '1 h 10 min'."""
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def format_bytes(count: int) -> str:
    """'350 MiB', '2.1 GiB'."""
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{max(1, round(count / 2**20))} MiB"


_HOW = {"measured": "measured here", "interpolated": "from the sizes measured here",
        "extrapolated": "rough: extrapolated from smaller sizes measured here",
        "scaled": "rough: scaled by pixels from another size measured here"}
_MEMORY_HOW = {"measured": "measured", "scaled": "scaled from another size",
               "formula": "formula from the latent size"}


def format_line(plan: Plan, found: Estimate) -> str:
    """The one line said before the first step, e.g. 'estimate: 42 of 50 steps from step 8
    (sigma 6.14), 1 image at 512x512: about 38 min (rough: ...), peak memory about 2.1 GiB
    (formula from the latent size)'."""
    if plan.img2img and plan.start_step > 0:
        where = f"init image inserted at step {plan.start_step}"
        if plan.sigma is not None:
            where += f", sigma {plan.sigma:.3g}"
        steps = f"{plan.steps_run} of {counted(plan.steps, 'step')} ({where})"
    elif plan.img2img:
        steps = (f"{counted(plan.steps, 'step')} (strength 1: the init image's shape only, "
                 "from pure noise)")
    else:
        steps = f"{counted(plan.steps, 'step')} from pure noise"
    plural = "s" if plan.images != 1 else ""
    images = f"{plan.images} image{plural} at {plan.size[0]}x{plan.size[1]}"
    if found.seconds is None:
        time = "time unknown (nothing measured for this model yet)"
    else:
        time = f"about {format_duration(found.seconds)} ({_HOW[found.how]}"
        time += ")" if found.decode_known else ", sampling only)"
    memory = ""
    if found.peak_bytes is not None:
        memory = (f", peak memory about {format_bytes(found.peak_bytes)} "
                  f"({_MEMORY_HOW[found.memory_how]})")
    return f"estimate: {steps}, {images}: {time}{memory}"
