"""The estimate before a run: its maths, the throughput store, the line before the first step,
the question or warning before a very long run, and --dry_run (issue 11 goal 4, issue 14)."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from core_fixtures import tiny_model, write_image
from dreamline import estimate as est
from dreamline.core import Generator
from dreamline.format import format_command
from dreamline.helptext import format_help
from dreamline.parse import parse_line
from dreamline.repl import forecast as forecasts
from dreamline.repl.runner import Runner
from dreamline.repl.settings import Settings
from dreamline.request import Request
from dreamline.throughput import STORE_FILE_NAME, Key, Sample, ThroughputStore

# ---- the maths ---------------------------------------------------------------------------------


def test_unet_calls_per_sampler() -> None:
    assert est.unet_calls("k_lms", 15) == 15
    assert est.unet_calls("k_heun", 10) == 19  # two per step, the last one once
    assert est.unet_calls("plms", 10) == 11  # one extra at its start
    assert est.unet_calls("plms", 1) == 1


def test_scaled_measured_interpolated_and_rough() -> None:
    points = {64: 1.0, 256: 4.0, 1024: 32.0}
    assert est.scaled(points, 256) == (4.0, "measured")
    value, how = est.scaled(points, 512) or (0.0, "")
    assert how == "interpolated" and 4.0 < value < 32.0
    # past the largest: a*x + b*x^2 through the two largest (here pure growth by x^1.5 -> b > 0)
    value, how = est.scaled(points, 4096) or (0.0, "")
    assert how == "extrapolated" and value > 32.0 * 4  # attention: faster than the pixels
    assert est.scaled({64: 1.0}, 256) == (4.0, "scaled")  # one size only: in proportion
    assert est.scaled({}, 64) is None


def test_extrapolation_never_shrinks() -> None:
    # slower growth than the pixels between the two largest: kept in proportion, not less
    value, how = est.scaled({64: 1.0, 256: 1.5}, 1024) or (0.0, "")
    assert how == "extrapolated" and value == pytest.approx(6.0)


def test_the_demo_model_at_512_is_far_beyond_five_minutes() -> None:
    """The classic case: demo model (32x32, latent 8x8) measured at small sizes only, asked
    for 512x512 with -W/-H: the estimate must be past CONFIRM_SECONDS (it ran ~17-39 min)."""
    measured = {(8, 8): Sample(0.036), (16, 16): Sample(0.08), (32, 32): Sample(0.47)}
    plan = est.Plan("k_lms", 50, 42, 8, 6.05, 1, (512, 512), (128, 128), True)
    found = est.estimate(plan, measured)
    assert found.seconds is not None and found.seconds > est.CONFIRM_SECONDS
    assert found.rough and found.how == "extrapolated"


def test_a_size_far_beyond_every_measured_one_is_probed_again() -> None:
    small = {(8, 8): Sample(0.03, probe=True), (16, 16): Sample(0.08, probe=True)}
    assert est.needs_probe({}, (8, 8))  # never probed
    assert est.needs_probe({(8, 8): Sample(0.03)}, (8, 8)) is False  # measured by a run
    assert not est.needs_probe(small, (32, 32))  # 4x the largest: extrapolated
    assert est.needs_probe(small, (32, 33))  # past 4x
    assert est.needs_probe(small, (384, 256))  # the 1536x1024 init image kept at its size


def test_the_runner_probes_a_far_larger_size_once(tmp_path: Path) -> None:
    """Measured at 64x64 only, a 512x512 line times a few larger sizes before estimating."""
    model = tiny_model()
    small = Request(prompt="a fox", steps=2, seed=1)
    big = Request(prompt="a fox", steps=2, seed=1, width=512, height=512)
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    key = _key(small)
    store.record(key, Sample(0.01, probe=True))
    forecast = forecasts.Forecast(model, big, None, store, persist=False)
    assert forecast.key.latent[0] * forecast.key.latent[1] > est.PROBE_BEYOND * 64
    forecast.estimate()
    sizes = set(store.samples(key.group))
    assert len(sizes) > 2 and max(w * h for w, h in sizes) > 4 * 64
    before = dict(store.samples(key.group))
    forecasts.Forecast(model, big, None, store, persist=False).estimate()
    assert store.samples(key.group) == before  # not probed twice in one process


def test_probe_stops_at_its_budget() -> None:
    timed: list[tuple[int, int]] = []

    def fake_call(size: tuple[int, int], warm: bool) -> float:
        timed.append(size)
        return 0.01 * (size[0] * size[1] / 64) ** 2  # grows with the square of the pixels

    found = est.probe(fake_call, (128, 128), calls=1)
    assert timed[:2] == [(8, 8), (16, 16)]  # the two smallest always
    assert (128, 128) not in found  # never the slow target itself
    assert all(seconds <= est.PROBE_MAX_CALL_SECONDS for seconds in found.values())


def test_estimate_uses_measured_memory_else_the_formula() -> None:
    plan = est.Plan("k_euler", 20, 20, 0, None, 2, (64, 64), (8, 8), False)
    found = est.estimate(plan, {(8, 8): Sample(0.5, 0.25, 1000)}, formula_bytes=7)
    assert found.seconds == pytest.approx(2 * (20 * 0.5 + 0.25))
    assert (found.peak_bytes, found.memory_how) == (1000, "measured")
    unknown = est.estimate(plan, {}, formula_bytes=7)
    assert (unknown.seconds, unknown.how, unknown.peak_bytes, unknown.memory_how) == \
        (None, "unknown", 7, "formula")
    assert "time unknown" in est.format_line(plan, unknown)


def test_memory_scaled_up_from_a_small_size_is_never_below_the_formula() -> None:
    """A new user saw 'peak memory about 7 MiB (scaled from another size)' for 512x512 from
    the demo model's 32x32 peak; measured there it was 341-358 MiB."""
    big = est.Plan("k_lms", 50, 50, 0, None, 1, (512, 512), (128, 128), False)
    small_peak = {(8, 8): Sample(0.01, 0.01, 30_000)}  # 30 kB at 8x8 latents
    formula = 300 * 2**20
    found = est.estimate(big, small_peak, formula_bytes=formula)
    assert (found.peak_bytes, found.memory_how) == (formula, "formula")
    roomy = est.estimate(big, {(8, 8): Sample(0.01, 0.01, 2**21)}, formula_bytes=formula)
    assert (roomy.peak_bytes, roomy.memory_how) == (2**21 * 256, "scaled")  # the larger one
    small = est.Plan("k_lms", 50, 50, 0, None, 1, (32, 32), (8, 8), False)
    down = est.estimate(small, {(128, 128): Sample(1.0, 1.0, 2**30)}, formula_bytes=2**40)
    assert (down.peak_bytes, down.memory_how) == (2**30 // 256, "scaled")  # scaled down: kept


def test_line_names_steps_start_sigma_images_time_and_memory() -> None:
    plan = est.Plan("k_lms", 20, 15, 5, 3.21, 4, (512, 512), (64, 64), True)
    line = est.format_line(plan, est.Estimate(17 * 60.0, "extrapolated", False, 3 * 2**30,
                                              "formula"))
    assert line.startswith("estimate: 15 of 20 steps (init image inserted at step 5, "
                           "sigma 3.21), 4 images at 512x512: about 17 min (rough")
    assert "peak memory about 3.0 GiB (formula from the latent size)" in line
    assert est.format_duration(45) == "45 s" and est.format_duration(3 * 3600 + 600) == \
        "3 h 10 min"


# ---- the store ---------------------------------------------------------------------------------

KEY = Key("0123456789", "cpu", "float32", 1, (8, 8))


def test_store_round_trip_and_runs_averaged(tmp_path: Path) -> None:
    path = tmp_path / "cache" / STORE_FILE_NAME
    assert ThroughputStore(path).record(KEY, Sample(0.2, 0.1, 4096))
    assert ThroughputStore(path).record(KEY, Sample(0.4, 0.3, 8192))
    kept = ThroughputStore(path).samples(KEY.group)[(8, 8)]
    assert kept.call_seconds == pytest.approx(0.3) and kept.extra_seconds == pytest.approx(0.2)
    assert kept.peak_bytes == 6144 and not kept.probe
    # a probe never replaces a real run
    ThroughputStore(path).record(KEY, Sample(9.0, probe=True))
    assert ThroughputStore(path).samples(KEY.group)[(8, 8)].call_seconds == pytest.approx(0.3)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"version": 99, "groups": {}}',
                                     '{"version": 1, "groups": {"g": {"8x8": {"call_seconds": '
                                     '"fast"}, "big": {"call_seconds": 1}}}}', "\udcff",
                                     '{"version": 1, "groups": {"g": {"8x8": {"call_seconds": '
                                     '1e308, '
                                     '"extra_seconds": 1e308, "peak_bytes": 1e308}}}}'])
def test_corrupt_store_counts_as_empty_and_is_rewritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / STORE_FILE_NAME
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    store = ThroughputStore(path)
    assert store.samples("g") == {} and store.samples(KEY.group) == {}
    assert store.record(KEY, Sample(0.5))
    assert ThroughputStore(path).samples(KEY.group) == {(8, 8): Sample(0.5)}


def test_unwritable_store_only_loses_the_measurement(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    store = ThroughputStore(blocked / STORE_FILE_NAME)  # its folder cannot be made
    assert not store.record(KEY, Sample(0.5))
    assert store.samples(KEY.group) == {(8, 8): Sample(0.5)}  # still used for this run


def _record_sizes(path: str, first: int) -> None:
    store = ThroughputStore(Path(path))
    for side in range(first, first + 10):
        store.record(Key("m", "cpu", "float32", 1, (side, side)), Sample(float(side)))


def test_concurrent_processes_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE_NAME
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_sizes, args=(str(path), first))
               for first in (1, 11, 21)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    kept = ThroughputStore(path).samples("m|cpu|float32|1")
    assert sorted(kept) == [(side, side) for side in range(1, 31)]
    assert json.loads(path.read_text())["version"] == 1


# ---- the runner: line, question, warning, dry run ---------------------------------------------


class Recorded:
    """A real tiny-model generator whose steps are written into the same list as the lines."""

    def __init__(self, events: list[str]) -> None:
        self.inner = Generator(tiny_model())
        self.model = self.inner.model
        self.events = events

    def iter_generate(self, request: Request, *, init: Any = None, on_step: Any = None,
                      on_start: Any = None) -> Any:
        def step(info: Any) -> None:
            self.events.append(f"step {info.index}")
            on_step(info)

        return self.inner.iter_generate(request, init=init, on_step=step, on_start=on_start)


def _key(request: Request) -> Key:
    model = tiny_model()
    plan = forecasts.plan_for(model, request, None)
    return Key(model.short_hash, str(model.device), "float32", torch.get_num_threads(),
               plan.latent)


def _runner(tmp_path: Path, events: list[str], store: ThroughputStore, **options: Any
            ) -> Runner:
    return Runner(Settings(outdir=tmp_path / "out"), lambda: Recorded(events),
                  say=events.append, progress_stream=io.StringIO(), store=store, **options)


def _slow_store(tmp_path: Path, request: Request, call_seconds: float) -> ThroughputStore:
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    store.record(_key(request), Sample(call_seconds, 0.0, 2**20))
    return store


def test_estimate_line_comes_before_the_first_step(tmp_path: Path) -> None:
    request = Request(prompt="a fox", steps=2, seed=1)
    events: list[str] = []
    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 30.0))  # 1 min
    runner.run(request, lambda path, seed: None)
    lines = [e for e in events if e.startswith(">> estimate") or e.startswith("step")]
    assert lines[0] == (">> estimate: 2 steps from pure noise, 1 image at 64x64: about 1 min "
                        "(measured here), peak memory about 1 MiB (measured)")
    assert lines[1:] == ["step 0", "step 1"]
    assert (tmp_path / "out" / "000001.1.png").is_file()


def test_quick_run_says_no_estimate_and_is_measured(tmp_path: Path) -> None:
    """Below ANNOUNCE_SECONDS nothing is said; the run's own throughput is kept (the probe's
    too, the first time the model is seen)."""
    request = Request(prompt="a fox", steps=2, seed=1)
    events: list[str] = []
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    _runner(tmp_path, events, store).run(request, lambda path, seed: None)
    assert not any("estimate" in e for e in events)
    kept = ThroughputStore(store.path).samples(_key(request).group)[_key(request).latent]
    assert not kept.probe and kept.extra_seconds is not None and kept.call_seconds > 0


@pytest.mark.parametrize("changes", [{"deepcache": 2}, {"tome": 0.5}, {"compiled": True}])
def test_runs_faster_or_slower_than_the_plain_unet_are_not_kept(tmp_path: Path,
                                                               changes: dict[str, Any]) -> None:
    """--compile pays its compile time in the first image, --deepcache/--tome skip work: none
    of them is the plain UNet's speed that the estimate is about (a new user's finding: one
    --compile run made later plain lines say "about 1 min" for half a second)."""
    compiled = changes.pop("compiled", False)
    request = Request(prompt="a fox", steps=2, seed=1).with_changes(**changes)
    events: list[str] = []
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    generator = Recorded(events)
    if compiled:
        generator.compiled = object()  # what a --compile Generator carries
    Runner(Settings(outdir=tmp_path / "out"), lambda: generator, say=events.append,
           progress_stream=io.StringIO(), store=store).run(request, lambda path, seed: None)
    kept = ThroughputStore(store.path).samples(_key(request).group)
    assert all(sample.probe for sample in kept.values())  # only the plain UNet's own probe


def test_img2img_line_names_the_start_step_and_sigma(tmp_path: Path) -> None:
    init = write_image(tmp_path, 0)
    request = Request(prompt="a fox", steps=20, strength=0.75, seed=1, init_img=str(init),
                      sampler="k_euler")
    events: list[str] = []
    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 0.0))
    runner.run(request.with_changes(dry_run=True), lambda path, seed: None)
    line = next(e for e in events if e.startswith(">> estimate"))
    assert re.match(r">> estimate: 15 of 20 steps \(init image inserted at step 5, sigma "
                    r"\d+(\.\d+)?\), 1 image at 64x64", line), line


def test_very_long_run_asks_first_and_no_runs_nothing(tmp_path: Path) -> None:
    request = Request(prompt="a fox", steps=2, seed=1)
    asked: list[str] = []
    events: list[str] = []

    def say_no(question: str) -> bool:
        asked.append(question)
        return False

    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 510.0), confirm=say_no)
    runner.run(request, lambda path, seed: None)
    assert asked == ["about 17 min; run? [y/N]"]
    assert not any(e.startswith("step") for e in events)
    assert ">> not run (a smaller -W/-H, --fit, fewer -s is quicker)" in events
    assert not list((tmp_path / "out").glob("*.png"))


def test_ctrl_c_at_the_question_answers_no(tmp_path: Path) -> None:
    """Nothing runs yet at the question: Ctrl-C is a no there, not "stopping after this
    step" (a new user's finding: the question stayed open and ate the next line)."""
    request = Request(prompt="a fox", steps=2, seed=1)
    events: list[str] = []

    def press_ctrl_c(question: str) -> bool:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)  # the signal is handled at once; this is never waited out
        except KeyboardInterrupt:
            events.append("Ctrl-C reached the question")
            return False
        return True

    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 510.0),
                     confirm=press_ctrl_c)
    runner.run(request, lambda path, seed: None)
    assert "Ctrl-C reached the question" in events
    assert not any("stopping after this step" in e for e in events)
    assert not any(e.startswith("step") for e in events)


def test_a_refused_run_of_several_images_names_a_smaller_n(tmp_path: Path) -> None:
    request = Request(prompt="a fox", steps=2, seed=1, iterations=3)
    events: list[str] = []
    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 510.0),
                     confirm=lambda question: False)
    runner.run(request, lambda path, seed: None)
    assert ">> not run (a smaller -W/-H, --fit, fewer -s or a smaller -n is quicker)" in events


def test_very_long_run_without_a_terminal_warns_and_runs(tmp_path: Path) -> None:
    request = Request(prompt="a fox", steps=2, seed=1)
    events: list[str] = []
    runner = _runner(tmp_path, events, _slow_store(tmp_path, request, 510.0))  # confirm=None
    runner.run(request, lambda path, seed: None)
    warning = [e for e in events if e.startswith(">> warning: this line takes about 17 min")]
    assert len(warning) == 1
    assert events.index(warning[0]) < events.index("step 0")
    assert (tmp_path / "out" / "000001.1.png").is_file()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    events: list[str] = []
    store = ThroughputStore(tmp_path / "cache" / STORE_FILE_NAME)
    runner = _runner(tmp_path, events, store)
    parsed = parse_line("a fox -s 3 -S 7 -n 2 --dry_run", Request())
    runner.run(parsed.request, lambda path, seed: pytest.fail("nothing is saved"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    assert not any(e.startswith("step") for e in events)
    assert events[-2].startswith(">> estimate: 3 steps from pure noise, 2 images at 64x64")
    assert events[-1] == ('>> dry run, nothing generated; the command: '
                          '"a fox" -s 3 -S 7 -C 7.5 -A k_lms -n 2')


def test_dry_run_is_a_switch_like_the_others() -> None:
    parsed = parse_line("a fox --dry_run", Request())
    assert parsed.request.dry_run and "dry_run" in parsed.given
    assert "--dry_run" in format_help("all") and "--dry_run" in format_help("other")
    assert "--dry_run" not in format_command(parsed.request.with_changes(seed=1))
    assert parse_line("a fox --dry", Request()).request.dry_run  # a unique prefix, as always


def test_progress_bar_shows_elapsed_and_eta() -> None:
    from dreamline.repl.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream, 1, enabled=True)
    progress.start_image()
    for done in (1, 2):
        progress.step(done, 4)
    progress.close()
    assert re.search(r"2/4 steps \[\d\d:\d\d<\d\d:\d\d, ", stream.getvalue())


def test_dry_run_is_completed_like_the_other_switches() -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from dreamline.repl.completer import InvokeCompleter
    from dreamline.repl.prompt import switch_specs

    text = "a fox --dr"
    found = InvokeCompleter(switch_specs()).get_completions(Document(text, len(text)),
                                                            CompleteEvent(True))
    assert "--dry_run " in [completion.text for completion in found]


def test_dry_run_refuses_what_the_run_would_refuse(tmp_path: Path) -> None:
    from dreamline.request import RequestError

    runner = _runner(tmp_path, [], ThroughputStore(None))
    with pytest.raises(RequestError, match="-W/--width: 8 is out of range; expected a size in "
                                           "pixels from 64 to 8192"):
        runner.run(Request(prompt="a fox", width=8, dry_run=True), lambda path, seed: None)


def test_peak_memory_sees_a_short_allocation() -> None:
    """The watcher catches memory taken and given back between two steps (Linux only)."""
    from dreamline.repl.peak_memory import PeakMemory

    if not Path("/proc/self/statm").is_file():
        pytest.skip("needs /proc")
    memory = PeakMemory(torch.device("cpu"))
    memory.start()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    time.sleep(0.2)
    del block
    grown = memory.growth()
    assert grown is not None and grown >= 32 * 2**20


@pytest.mark.parametrize(("typed", "runs"), [("y\n", True), ("Yes\n", True), ("\n", False),
                                             ("n\n", False), ("", False)])
def test_only_yes_runs_a_very_long_line(monkeypatch: pytest.MonkeyPatch, typed: str,
                                        runs: bool) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))  # "": Ctrl-D (EOFError)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert forecasts.ask_at_terminal("about 17 min; run? [y/N]") is runs
