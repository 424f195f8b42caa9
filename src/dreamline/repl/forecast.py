"""The runner's side of dreamline.estimate: the estimate line before the first step, the
question before a very long run, ``--dry_run``, and the measurements after each image.

Only a generator with a loaded model (``generator.model.unet``) is estimated: fakes and the
Ray workers' stand-ins have none, and run as before.  torch comes in with the loaded model.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

from dreamline import estimate as est
from dreamline.repl.peak_memory import PeakMemory
from dreamline.request import Request, steps_to_run
from dreamline.throughput import STORE_FILE_NAME, Key, Sample, Size, ThroughputStore

Say = Callable[[str], None]
Confirm = Callable[[str], bool]  # shows a question, True for yes
CONTEXT_TOKENS = 77  # the text context the probe hands the UNet (one CLIP chunk)


def default_store() -> ThroughputStore:
    """The store in the user's cache folder (``$XDG_CACHE_HOME/dreamline/throughput.json``)."""
    from dreamline.models.registry import user_cache_dir

    return ThroughputStore(user_cache_dir() / STORE_FILE_NAME)


def ask_at_terminal(question: str) -> bool:
    """Ask on the terminal; only 'y' or 'yes' runs (Enter, Ctrl-C and Ctrl-D do not)."""
    try:
        answer = input(f"{question} ")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stdout)
        return False
    return answer.strip().lower() in ("y", "yes")


def _sigma(model: Any, request: Request, steps_run: int) -> float | None:
    """The noise level the init image is inserted at: the first sigma run, or for samplers
    without sigmas the equivalent sqrt((1 - alpha) / alpha) of the first timestep run."""
    from dreamline.core.schedule import Schedule, make_scheduler

    scheduler, schedule_name = make_scheduler(request.sampler, model.scheduler_config,
                                              schedule=request.sigma_schedule,
                                              prediction_type=model.prediction_type)
    schedule = Schedule.full(scheduler, request.sampler, request.steps, schedule=schedule_name,
                             device="cpu")
    if steps_run < request.steps:
        schedule = schedule.sliced(steps_run)
    if schedule.uses_sigmas:
        return float(schedule.start_sigma())
    alphas = getattr(schedule.scheduler, "alphas_cumprod", None)
    if alphas is None or len(schedule.timesteps) == 0:
        return None
    alpha = float(alphas[int(schedule.timesteps[0])])
    return ((1 - alpha) / alpha) ** 0.5 if 0 < alpha <= 1 else None


def plan_for(model: Any, request: Request, init: Any, *, with_sigma: bool = False
             ) -> est.Plan:
    """What ``request`` will run with ``model`` (init: the PreparedInit, None for txt2img);
    ``with_sigma``: also the noise level the init image is inserted at.  Raises RequestError
    for a side below the model's multiple, as the generator would."""
    factor = model.vae_scale_factor
    if init is not None:
        width, height = init.image.size
        steps_run = steps_to_run(request.strength, request.steps) \
            if request.strength < 1.0 else request.steps
    else:
        from dreamline.image_sizes import floor_side

        def side(name: str, given: int | None, default: int) -> int:  # as the generator does
            return floor_side(name, given if given is not None else default,
                              model.size_multiple, lambda _text: None)

        width = side("-W/--width", request.width, model.default_width)
        height = side("-H/--height", request.height, model.default_height)
        steps_run = request.steps
    # sigma only for the line that names it: a scheduler built per command would be wasted work
    sigma = _sigma(model, request, steps_run) if with_sigma and init is not None and \
        steps_run < request.steps else None
    return est.Plan(request.sampler, request.steps, steps_run, request.steps - steps_run, sigma,
                    request.iterations, (width, height), (width // factor, height // factor),
                    init is not None)


def _time_call(model: Any, size: Size, warm: bool) -> float:
    """Seconds of one guided UNet call (a batch of two) at latent ``size``; ``warm``: after one
    untimed call at that size (the first pays for setting up the kernels)."""
    import torch

    unet = model.unet
    x = torch.zeros(2, unet.config.in_channels, size[1], size[0], device=model.device,
                    dtype=model.dtype)
    context = torch.zeros(2, CONTEXT_TOKENS, unet.config.cross_attention_dim,
                          device=model.device, dtype=model.dtype)
    timestep = torch.tensor(500, device=model.device)

    def call() -> None:
        unet(x, timestep, encoder_hidden_states=context, return_dict=False)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)

    with torch.inference_mode():
        if warm:
            call()
        started = time.perf_counter()
        call()
    return time.perf_counter() - started


class Forecast:
    """One command's estimate, and the measurement of each of its images."""

    def __init__(self, model: Any, request: Request, init: Any, store: ThroughputStore,
                 *, persist: bool = True, measure: bool = True) -> None:
        import torch

        self.model = model
        self.request = request
        self.init = init
        self.store = store
        self.persist = persist
        self.measure = measure  # False: this run's speed is not the plain UNet's (--compile...)
        self.plan = plan_for(model, request, init)
        self.key = Key(model.short_hash, str(model.device), str(model.dtype).split(".")[-1],
                           torch.get_num_threads(), self.plan.latent)
        self.memory = PeakMemory(model.device)
        self._started = self._last_step = 0.0
        self._steps = 0

    def estimate(self) -> est.Estimate:
        """The estimate; the first time this model is seen on this machine's settings, or when
        the size asked for is far beyond every size measured (``est.needs_probe``), a few UNet
        calls at growing sizes are timed first (and kept)."""
        samples = self.store.samples(self.key.group)
        probed = (self.key.group, self.key.latent)
        if est.needs_probe(samples, self.key.latent) and probed not in self.store.probed:
            self.store.probed.add(probed)  # once per store: a second probe would find the same
            for size, seconds in est.probe(lambda s, warm: _time_call(self.model, s, warm),
                                           self.key.latent, self.plan.calls).items():
                self.store.record(dataclasses.replace(self.key, latent=size),
                                  Sample(seconds, probe=True), persist=self.persist)
            samples = self.store.samples(self.key.group)
        return est.estimate(self.plan, samples, self._formula())

    def _formula(self) -> int:
        unet, vae = self.model.unet.config, self.model.vae.config
        return est.memory_formula(self.plan.latent,
                                  unet_channels=tuple(unet.block_out_channels),
                                  vae_channels=tuple(vae.block_out_channels),
                                  vae_factor=self.model.vae_scale_factor,
                                  value_bytes=self.model.dtype.itemsize)

    def line(self, found: est.Estimate) -> str:
        """The estimate line, naming the init image's noise level (computed only here)."""
        plan = plan_for(self.model, self.request, self.init, with_sigma=True)
        return est.format_line(plan, found)

    def announce(self, say: Say, confirm: Confirm | None) -> bool:
        """Say the estimate line when the run is expected to take over ANNOUNCE_SECONDS; past
        CONFIRM_SECONDS ask ``confirm`` (at a terminal) or, without one, warn and go on.  False
        when the user said no."""
        found = self.estimate()
        seconds = found.seconds
        if seconds is None or seconds <= est.ANNOUNCE_SECONDS:
            return True
        say(f">> {self.line(found)}")
        if seconds <= est.CONFIRM_SECONDS:
            return True
        long = f"about {est.format_duration(seconds)}"
        quicker = "a smaller -W/-H, --fit, fewer -s" + (" or a smaller -n" if
                                                         self.plan.images > 1 else "")
        if confirm is None:
            say(f">> warning: this line takes {long}, far longer than usual; running it anyway "
                f"({quicker} is quicker; --dry_run only estimates)")
            return True
        if confirm(f"{long}; run? [y/N]"):
            return True
        say(f">> not run ({quicker} is quicker)")
        return False

    # ---- measuring each image -------------------------------------------------------------
    def start_image(self) -> None:
        self.memory.start()
        self._started = self._last_step = time.perf_counter()
        self._steps = 0

    def step(self) -> None:
        self._last_step = time.perf_counter()
        self._steps += 1

    def close(self) -> None:
        """The command ended (finished, failed or interrupted): stop measuring."""
        self.memory.stop()

    def finish_image(self) -> None:
        """An image came out: keep its seconds per UNet call, decode time and peak memory."""
        if self._steps == 0 or not self.measure:
            return
        now = time.perf_counter()
        calls = est.unet_calls(self.plan.sampler, self._steps)
        sample = Sample((self._last_step - self._started) / calls, now - self._last_step,
                        self.memory.growth())
        self.store.record(self.key, sample, persist=self.persist)


class NoForecast:
    """The Measure of a generator without a loaded model (fakes, Ray's stand-in): it says
    nothing, never asks and measures nothing."""

    def announce(self, say: Say, confirm: Confirm | None) -> bool:
        return True

    def start_image(self) -> None:
        return None

    def step(self) -> None:
        return None

    def finish_image(self) -> None:
        return None

    def close(self) -> None:
        return None


NO_FORECAST = NoForecast()
Measure = Forecast | NoForecast  # what the runner's job holds


def make(generator: Any, request: Request, init: Any, store: ThroughputStore | None,
         *, persist: bool = True) -> Measure:
    """The forecast for a generator with a loaded model; NO_FORECAST without one (or store)."""
    model = getattr(generator, "model", None)
    if store is None or getattr(model, "unet", None) is None:
        return NO_FORECAST
    # Only plain runs are kept: --compile pays its compile time in the first image, and
    # --deepcache/--tome run faster than the plain UNet the estimate is about.
    plain = getattr(generator, "compiled", None) is None and request.deepcache == 1 \
        and request.tome == 0
    return Forecast(model, request, init, store, persist=persist, measure=plain)


def dry_run(generator: Any, request: Request, say: Say, store: ThroughputStore | None
            ) -> None:
    """--dry_run: say the estimate and the normalised command; generate and write nothing
    (what is measured to estimate is kept for this run only)."""
    from dreamline.core.noise import resolve_seed
    from dreamline.format import format_command
    from dreamline.repl.inputs import prepare_line_init

    model = getattr(generator, "model", None)
    init = prepare_line_init(request, model, say) if model is not None else None
    forecast = make(generator, request, init, store, persist=False)
    if not isinstance(forecast, Forecast):
        say(">> estimate: unknown (no model loaded here to measure)")
    else:
        say(f">> {forecast.line(forecast.estimate())}")
    command = dataclasses.replace(request, seed=resolve_seed(request.seed), dry_run=False)
    if init is not None and not request.fit:  # the size that runs, as a real run prints it
        command = dataclasses.replace(command, width=init.image.size[0],
                                      height=init.image.size[1])
    say(f">> dry run, nothing generated; the command: {format_command(command)}")
