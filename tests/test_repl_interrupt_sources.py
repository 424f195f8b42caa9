"""Ctrl-C and where it ends: at the prompt it ends the command and the REPL goes on; in a
--from_file file or a pipe it stops the whole run (status 130) naming the line, after the
failures so far; in a !replay (nested or not) it stops the replay, naming the innermost file's
line, and the prompt goes on.  (A new user's finding: Ctrl-C stopped only the current line and
the batch went on, with status 0.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dreamline.repl.context import CommandInterrupted
from dreamline.request import Request
from test_repl import FakeRunner, make_session

STOP = "stop here"


class StoppingRunner(FakeRunner):
    """The fake runner; Ctrl-C stops the command whose prompt is STOP, after its first image
    is saved (as the real runner does: saved, said, then CommandInterrupted)."""

    def run(self, request: Request, on_saved: Callable[[Path, int], None]) -> None:
        super().run(request.with_changes(iterations=1) if request.prompt == STOP else request,
                    on_saved)
        if request.prompt == STOP:
            raise CommandInterrupted


def session_for(tmp_path: Path, *, interactive: bool):  # type: ignore[no-untyped-def]
    session, runner, out, err = make_session(tmp_path, interactive=interactive)
    stopping = StoppingRunner(runner.outdir, runner.models)
    session.runner = stopping
    return session, stopping, out, err


def prompts(runner: FakeRunner) -> list[str]:
    return [request.prompt for request in runner.requests]


def test_a_piped_run_stops_at_the_interrupted_line(tmp_path: Path) -> None:
    session, runner, out, err = session_for(tmp_path, interactive=False)
    status = session.run_lines(["a cat -G 0.5\n", f"{STOP}\n", "not run\n"], source="stdin")
    assert status == 130
    assert prompts(runner) == [STOP]
    lines = err.getvalue().splitlines()
    assert "1 line(s) of stdin failed:" in lines  # the failures before it are still said
    assert lines[-1] == "interrupted at line 2 of stdin; the lines after it were not run"
    assert "goodbye!" not in out.getvalue()
    assert len(list(runner.outdir.glob("*.png"))) == 1  # the finished image stays


def test_at_the_prompt_ctrl_c_ends_the_command_and_the_repl_goes_on(tmp_path: Path) -> None:
    session, runner, _, err = session_for(tmp_path, interactive=True)
    outcome = session.handle_line(STOP)
    assert outcome.error == "interrupted"
    assert "interrupted" not in err.getvalue()  # the command said it; not twice
    assert session.handle_line("after").error is None
    assert prompts(runner) == [STOP, "after"]


def test_a_replay_stops_and_names_the_innermost_line(tmp_path: Path) -> None:
    session, runner, _, err = session_for(tmp_path, interactive=True)
    inner = tmp_path / "inner.txt"
    inner.write_text(f"one\n{STOP}\nthree\n")
    outer = tmp_path / "outer.txt"
    outer.write_text(f"zero\n!replay {inner}\nfour\n")
    outcome = session.handle_line(f"!replay {outer}")
    assert prompts(runner) == ["zero", "one", STOP]  # neither three nor four ran
    assert outcome.error == (f"error: !replay stopped: interrupted at line 2 of {inner}; the "
                             "lines after it were not run")
    assert err.getvalue().splitlines()[-1] == outcome.error  # said once
    assert session.handle_line("after").error is None  # the prompt goes on


class FinishingRunner(FakeRunner):
    """The fake runner; Ctrl-C comes during the command whose prompt is STOP, which still
    finishes (as when Ray workers send its images back): the real runner's ``stopped_after``."""

    stopped_after = False

    def run(self, request: Request, on_saved: Callable[[Path, int], None]) -> None:
        super().run(request, on_saved)
        self.stopped_after = request.prompt == STOP


def test_a_ctrl_c_during_a_line_that_still_finishes_stops_the_run_after_it(
        tmp_path: Path) -> None:
    """A new user's finding: with --ray one Ctrl-C said 'stopping after this step' and the whole
    batch went on (exit 0): the worker's images came back, so no step ever saw the request."""
    session, runner, out, err = make_session(tmp_path, interactive=False)
    finishing = FinishingRunner(runner.outdir, runner.models)
    session.runner = finishing
    status = session.run_lines(["one\n", f"{STOP}\n", "not run\n"], source="stdin")
    assert status == 130 and prompts(finishing) == ["one", STOP]
    assert err.getvalue().splitlines()[-1] == ("interrupted at line 2 of stdin; the lines after "
                                               "it were not run")
    assert session.recall.last is not None  # the finished line counts as the last command


def test_the_runner_says_a_stop_that_came_while_images_were_not_stepping(
        tmp_path: Path) -> None:
    import os
    import signal

    from dreamline.core.types import GeneratedImage
    from test_repl_runner import FakeGenerator, make_runner

    presses = [1]

    class RemoteLike(FakeGenerator):  # images arrive without steps, as from a Ray worker
        def iter_generate(self, request: Request, **options: object):  # type: ignore[no-untyped-def, override]
            if presses:
                presses.pop()
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while waiting for the worker
            images: list[GeneratedImage] = list(super().iter_generate(request))
            yield from images

    runner, lines = make_runner(tmp_path, RemoteLike())
    runner.run(Request(prompt="a fox", steps=2, iterations=2), lambda path, seed: None)
    assert runner.stopped_after  # the command finished (2 images) but a stop was asked for
    assert len(list(tmp_path.glob("*.png"))) == 2
    runner.run(Request(prompt="a fox", steps=2), lambda path, seed: None)
    assert not runner.stopped_after  # reset by the next command
