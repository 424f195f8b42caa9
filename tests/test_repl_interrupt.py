"""Ctrl-C during generation: the first says "stopping after this step..." at once and stops at
the next step boundary; a second stops at once, but never while a finished image is written;
the images finished before stay written and listed, and the command ends with
CommandInterrupted (at the prompt the REPL goes on; a file, a pipe or a !replay stops: see
test_repl_interrupt_sources.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dreamline.core.types import GeneratedImage, StartInfo, StepInfo
from dreamline.repl.interrupt import STOPPING
from dreamline.request import Request
from dreamline.repl.context import CommandInterrupted
from dreamline.repl.runner import Runner
from test_repl_runner import FakeGenerator, make_runner


def run(runner: Runner, request: Request) -> list[tuple[Path, int]]:
    """The saved files of a command that Ctrl-C stops (CommandInterrupted, after saving)."""
    saved: list[tuple[Path, int]] = []
    with pytest.raises(CommandInterrupted):
        runner.run(request, lambda path, seed: saved.append((path, seed)))
    return saved

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt",
                                reason="needs POSIX signals")


def ctrl_c() -> None:
    """What the terminal sends on Ctrl-C (delivered to this, the main, thread)."""
    os.kill(os.getpid(), signal.SIGINT)


class CtrlCGenerator(FakeGenerator):
    """The fake generator, pressing Ctrl-C ``times`` times inside image ``image`` (from 0) at
    step ``step``, and recording what ran in ``events`` (shared with the runner's lines)."""

    def __init__(self, events: list[str], image: int, step: int, times: int = 1) -> None:
        super().__init__()
        self.events, self.image, self.step, self.times = events, image, step, times

    def iter_generate(self, request: Request, *, init: Any = None,
                      on_step: Callable[[StepInfo], None] | None = None,
                      on_start: Callable[[StartInfo], None] | None = None
                      ) -> Iterator[GeneratedImage]:
        def step_hook(info: StepInfo) -> None:
            image = len(done)
            if image == self.image and info.index == self.step:
                for _ in range(self.times):
                    ctrl_c()
                self.events.append(f"step {image}.{info.index} went on after Ctrl-C")
            else:
                self.events.append(f"step {image}.{info.index}")
            assert on_step is not None
            on_step(info)

        done: list[GeneratedImage] = []
        for result in super().iter_generate(request, init=init, on_step=step_hook,
                                            on_start=on_start):
            done.append(result)
            yield result


def runner_for(tmp_path: Path, image: int, step: int, times: int = 1
               ) -> tuple[Any, list[str]]:
    events: list[str] = []
    runner, lines = make_runner(tmp_path, CtrlCGenerator(events, image, step, times))
    runner.say = events.append  # one list: what was said, in order with the steps
    return runner, events


def test_the_first_ctrl_c_is_said_at_once_and_stops_after_that_step(tmp_path: Path) -> None:
    runner, events = runner_for(tmp_path, image=1, step=1)
    previous = signal.getsignal(signal.SIGINT)
    saved = run(runner, Request(prompt="a fox", steps=4, iterations=3))
    assert [path.name for path, _ in saved] == ["000001.10.png"]
    said = events.index(f">> {STOPPING}")
    assert events[said - 1:said + 2] == ["step 1.0", f">> {STOPPING}",
                                         "step 1.1 went on after Ctrl-C"]
    assert "step 1.2" not in events  # stopped at the end of the step it came in
    assert events[-1] == ">> interrupted: generation stopped; kept 1 finished image(s)"
    assert (tmp_path / "000001.10.png").is_file()
    assert signal.getsignal(signal.SIGINT) is previous  # the handler was only for the command


def test_a_ctrl_c_in_the_last_step_keeps_that_image(tmp_path: Path) -> None:
    runner, events = runner_for(tmp_path, image=0, step=3)
    saved = run(runner, Request(prompt="a fox", steps=4, iterations=3))
    assert [path.name for path, _ in saved] == ["000001.10.png"]  # finished, so written
    assert "step 1.0" not in events
    assert events[-1] == ">> interrupted: generation stopped; kept 1 finished image(s)"


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    runner, events = runner_for(tmp_path, image=1, step=1, times=2)
    saved = run(runner, Request(prompt="a fox", steps=4, iterations=3))
    assert [path.name for path, _ in saved] == ["000001.10.png"]
    assert f">> {STOPPING}" in events
    assert not any("went on" in event for event in events)  # the step itself was cut
    assert events[-1] == ">> interrupted: generation stopped; kept 1 finished image(s)"


def test_ctrl_c_while_an_image_is_written_finishes_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dreamline import outputs

    real_save = outputs.save_image

    def save_with_ctrl_c(*args: Any, **kwargs: Any) -> Path:
        ctrl_c()
        ctrl_c()  # twice: would stop at once anywhere else
        return real_save(*args, **kwargs)

    monkeypatch.setattr(outputs, "save_image", save_with_ctrl_c)
    runner, lines = make_runner(tmp_path, FakeGenerator())
    saved = run(runner, Request(prompt="a fox", steps=2, iterations=3))
    assert [path.name for path, _ in saved] == ["000001.10.png"]
    assert (tmp_path / "000001.10.png").stat().st_size > 0
    assert lines[-1] == ">> interrupted: generation stopped; kept 1 finished image(s)"


def test_two_quick_ctrl_cs_during_one_long_c_call_stop_at_once() -> None:
    """Both signals arrive while the main thread is inside one C call (as in a big attention
    op): Python runs the handler once, but the second Ctrl-C must still stop at once."""
    import hashlib
    import threading
    import time

    from dreamline.repl.interrupt import StopRequest

    said: list[str] = []
    stop = StopRequest(said.append)
    data = b"x" * 800_000_000  # half a second or more of hashing, in one C call

    def two_presses() -> None:
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.03)
        os.kill(os.getpid(), signal.SIGINT)

    with stop.installed():
        sender = threading.Thread(target=two_presses)
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            started = time.perf_counter()
            hashlib.sha256(data).digest()  # the handler runs only when this returns
            assert time.perf_counter() - started > 0.15, "the C call ended before the signals"
            time.sleep(5)  # not reached when both presses were counted
        sender.join()
    assert said == [STOPPING]
