"""Shared pieces of the benchmark scripts: machine facts, models, timers, peak memory, tables.

Benchmarks run beside other work (shared cores, background jobs), so every script measures the
things it compares in one process, interleaved, several times, and prints medians and minima
together with the load seen before and after; a single number from a busy machine means little.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # import-time notices clutter tables

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tiny_models / core_fixtures: the tests' tiny topology
sys.path.insert(0, str(REPO / "src"))  # runnable without an installed dreamline as well

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dreamline.models.types import LoadedModel  # noqa: E402

SD15_DIR = REPO / "src" / "dreamline" / "data" / "sd15"
TOKENIZER_DIR = REPO / "src" / "dreamline" / "data" / "tokenizer"
REGISTRY = REPO / "configs" / "models.yaml"
PROMPT = "a tree by a river, oil painting"
SEED = 1234


def quiet(_: str) -> None:
    """Swallow the generator's one-line messages: they would break up the tables."""


# --- the machine and its load ------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def busy_percent(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over ``seconds`` while we sit idle: the background load."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None or after[0] == before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return 100.0 * (total - idle) / total


def load_line(label: str) -> str:
    busy = busy_percent()
    busy_text = "n/a" if busy is None else f"{busy:.0f}% of {os.cpu_count()} cores busy"
    return f"{label}: loadavg {load_average()}; background {busy_text} (1 s sample, we idle)"


def machine_lines(device: torch.device, dtype: torch.dtype) -> list[str]:
    import diffusers
    import transformers

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    lines = [
        f"cpu: {cpu_model()}; nproc {affinity or os.cpu_count()} (os.cpu_count {os.cpu_count()})",
        f"torch {torch.__version__} ({torch.get_num_threads()} intra-op threads), "
        f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, "
        f"python {platform.python_version()}",
        f"device {device}, dtype {str(dtype).removeprefix('torch.')}",
    ]
    if device.type == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}")
    return lines


# --- models ------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _prepare(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Any:
    """Eval mode, no grads, on the device; cast only when needed (diffusers warns on casts)."""
    module.requires_grad_(False).eval()
    if next(module.parameters()).dtype != dtype:
        module.to(dtype=dtype)
    return module.to(device=device)


def tiny_model(device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """The tests' tiny SD 1.x topology with random weights (seed 0), native size 64."""
    from tiny_models import SCHEDULER_CONFIG, tiny_components

    parts = tiny_components(seed=0)
    unet, vae, text_encoder = (_prepare(parts[name], device, dtype)
                               for name in ("unet", "vae", "text_encoder"))
    return LoadedModel(
        name="tiny", path=Path("tiny"), short_hash="0000000000",
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=parts["tokenizer"],
        scheduler_config=dict(SCHEDULER_CONFIG), device=device, dtype=dtype,
        default_width=64, default_height=64)


def sd15_random_model(device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """Full SD 1.5 networks from the shipped configs, random weights, built in memory (~4 GiB)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)  # weight init draws from the global generator
    unet = UNet2DConditionModel.from_config(_read_json(SD15_DIR / "unet" / "config.json"))
    vae = AutoencoderKL.from_config(_read_json(SD15_DIR / "vae" / "config.json"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(str(SD15_DIR / "text_encoder")))
    scheduler = {key: value for key, value in
                 _read_json(SD15_DIR / "scheduler" / "scheduler_config.json").items()
                 if not key.startswith("_")}
    modules = [_prepare(m, device, dtype) for m in (unet, vae, text_encoder)]
    return LoadedModel(
        name="sd15-random", path=SD15_DIR, short_hash="0000000000",
        unet=modules[0], vae=modules[1], text_encoder=modules[2],
        tokenizer=CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR)),
        scheduler_config=scheduler, device=device, dtype=dtype,
        default_width=512, default_height=512)


def build_model(spec: str, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """``tiny``, ``sd15-random``, or a registry name / path through dreamline's own loader."""
    if spec == "tiny":
        return tiny_model(device, dtype)
    if spec == "sd15-random":
        print("warning: sd15-random is the full SD 1.5 architecture (~1.07 G parameters); on a "
              "CPU keep it small (e.g. --size 256 --steps 4 --strength 0.5, 1-2 repeats)",
              file=sys.stderr)
        return sd15_random_model(device, dtype)
    from dreamline.models.loader import load_model
    from dreamline.models.registry import ModelRegistry

    # The registry's names without its file: with no path, short hashes are not remembered in
    # configs/.model_hashes.json, so a benchmark leaves nothing behind in the working tree.
    named = ModelRegistry.load(REGISTRY)
    registry = ModelRegistry([named.entry(name) for name in named.names], path=None)
    return load_model(spec, registry=registry, device=device, dtype=dtype, report=print)


def pick_device_dtype(device: str, precision: str) -> tuple[torch.device, torch.dtype]:
    from dreamline.devices import choose_device, choose_dtype

    chosen = choose_device(None if device == "auto" else device)
    return chosen, choose_dtype(chosen, precision)


def start(device: str, precision: str, threads: int | None) -> tuple[torch.device, torch.dtype]:
    """Common start of a benchmark: threads, device and dtype, then the machine and the load it
    runs beside, printed first so every figure that follows can be read against them."""
    if threads is not None:
        torch.set_num_threads(threads)
    chosen_device, dtype = pick_device_dtype(device, precision)
    for line in machine_lines(chosen_device, dtype):
        print(line)
    print(load_line("load before"), flush=True)
    return chosen_device, dtype


def add_run_options(parser: Any, *, repeats: int) -> None:
    """The request and timing options shared by the per-model comparisons."""
    parser.add_argument("--size", type=int, help="image side (default: the model's own)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.75)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--warmup", type=int, default=1)


def init_image_file(directory: Path, size: int) -> Path:
    """A deterministic gradient picture of ``size`` x ``size`` (the tests' picture 0)."""
    from core_fixtures import gradient_image

    path = directory / f"init-{size}.png"
    gradient_image(0, size).save(path)
    return path


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class UNetTimer:
    """Counts UNet calls and the span from the first call's start to the last call's end.

    Hooks on the one shared UNet module see dreamline's loop and diffusers' alike, so
    "seconds per step" means the same thing for both (UNet plus scheduler maths per step).
    """

    sync: Callable[[], None]
    calls: int = 0
    unet_seconds: float = 0.0
    first: float | None = None
    last: float | None = None
    _start: float = 0.0

    def reset(self) -> None:
        self.calls, self.unet_seconds, self.first, self.last = 0, 0.0, None, None

    def pre(self, *_: Any, **__: Any) -> None:
        self.sync()
        self._start = time.perf_counter()
        if self.first is None:
            self.first = self._start

    def post(self, *_: Any, **__: Any) -> None:
        self.sync()
        self.last = time.perf_counter()
        self.calls += 1
        self.unet_seconds += self.last - self._start

    @property
    def span(self) -> float:
        return 0.0 if self.first is None or self.last is None else self.last - self.first


def attach_timer(unet: torch.nn.Module, device: torch.device) -> UNetTimer:
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    timer = UNetTimer(sync=sync)
    unet.register_forward_pre_hook(timer.pre)
    unet.register_forward_hook(timer.post)
    return timer


def _vm_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@dataclass
class Memory:
    peak_rss_mib: float | None = None  # process peak RSS during the run
    extra_rss_mib: float | None = None  # that peak minus the RSS just before the run
    cuda_peak_mib: float | None = None  # torch.cuda.max_memory_allocated during the run
    note: str = ""


@contextmanager
def measure_memory(device: torch.device) -> Iterator[Memory]:
    """Peak RSS of this run alone: Linux lets a process reset its high-water mark (clear_refs 5).

    Where that is not possible, ru_maxrss (the whole process's lifetime peak) is reported instead
    and marked as such.
    """
    memory = Memory()
    reset = False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        memory.note = "lifetime peak (could not reset)"
    before = _vm_kib("VmRSS")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield memory
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        memory.cuda_peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    peak = _vm_kib("VmHWM") if reset else None
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    memory.peak_rss_mib = peak / 1024
    if before is not None and reset:
        memory.extra_rss_mib = (peak - before) / 1024


@dataclass
class Sample:
    """One timed run."""

    seconds: float
    step_seconds: float | None  # loop span / sampling steps
    unet_call_seconds: float | None
    unet_calls: int
    steps_run: int
    memory: Memory
    image: Image.Image | None = None


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def values(self, pick: Callable[[Sample], float | None]) -> list[float]:
        return [v for v in (pick(s) for s in self.samples) if v is not None]


def timed(run: Callable[[], Image.Image | None], timer: UNetTimer, device: torch.device,
          steps_run: int) -> Sample:
    """Time one call of ``run`` (which makes one image), with its UNet span and peak memory."""
    timer.reset()
    with measure_memory(device) as memory:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        image = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
    calls = timer.calls
    return Sample(
        seconds=seconds,
        step_seconds=timer.span / steps_run if steps_run else None,
        unet_call_seconds=timer.unet_seconds / calls if calls else None,
        unet_calls=calls, steps_run=steps_run, memory=memory, image=image)


def interleaved(runs: Sequence[tuple[str, Callable[[], Sample]]], repeats: int,
                warmup: int = 1) -> list[Series]:
    """Run each contender ``repeats`` times, alternating the order every round (ABAB.. BA BA).

    Alternating cancels slow drifts in background load; the warm-up rounds (first calls pay
    for lazy initialisation and allocator growth) are not kept.
    """
    series = [Series(name) for name, _ in runs]
    for round_index in range(warmup + repeats):
        order = list(range(len(runs)))
        if round_index % 2:
            order.reverse()
        for index in order:
            sample = runs[index][1]()
            if round_index >= warmup:
                series[index].samples.append(sample)
        if round_index >= warmup:
            print(f"  round {round_index - warmup + 1}/{repeats}: " + ", ".join(
                f"{series[i].name} {series[i].samples[-1].seconds:.3f} s" for i in order),
                flush=True)
    return series


def max_pixel_difference(a: Image.Image, b: Image.Image) -> int:
    left = np.asarray(a.convert("RGB"), dtype=np.int16)
    right = np.asarray(b.convert("RGB"), dtype=np.int16)
    if left.shape != right.shape:
        return -1
    return int(np.abs(left - right).max())


# --- printing ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _min(values: list[float]) -> float | None:
    return min(values) if values else None


METRICS: list[tuple[str, Callable[[Sample], float | None], int]] = [
    ("s/image", lambda s: s.seconds, 4),
    ("s/step (loop)", lambda s: s.step_seconds, 4),
    ("s/UNet call", lambda s: s.unet_call_seconds, 4),
    ("peak RSS MiB", lambda s: s.memory.peak_rss_mib, 0),
    ("RSS growth MiB", lambda s: s.memory.extra_rss_mib, 0),
    ("CUDA peak MiB", lambda s: s.memory.cuda_peak_mib, 0),
]


def print_table(series: Sequence[Series], ratio: bool = True) -> None:
    """Median and min of each metric, contenders side by side, plus first/second ratio."""
    width = 14
    header = f"  {'metric':<22}" + "".join(f"{s.name:>{width}}" for s in series)
    if ratio and len(series) == 2:
        header += f"{series[0].name[:6] + '/' + series[1].name[:6]:>{width + 2}}"
    print(header)
    for label, pick, digits in METRICS:
        for stat_name, stat in (("median", _median), ("min", _min)):
            if stat_name == "min" and label.startswith(("peak", "RSS", "CUDA")):
                continue
            values = [stat(s.values(pick)) for s in series]
            if all(v is None for v in values):
                continue
            line = f"  {label + ' ' + stat_name:<22}" + "".join(
                f"{_fmt(v, digits):>{width}}" for v in values)
            if ratio and len(values) == 2 and values[0] and values[1]:
                line += f"{values[0] / values[1]:>{width + 2}.3f}"
            print(line)
    first = series[0].samples[0] if series[0].samples else None
    if first is not None:
        print(f"  ({first.steps_run} sampling steps, {first.unet_calls} UNet calls per image; "
              f"{len(series[0].samples)} timed runs each)")
