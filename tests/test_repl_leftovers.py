"""Leftovers of the REPL's error policy: a file that replays itself (or a cycle of files) is
one line naming it, and a batch run's line hooks fail inside the policy (one line, the
traceback in the log), never out of the loop."""

from __future__ import annotations

from pathlib import Path

from dreamline.repl.context import Flow
from test_repl import make_session


def test_a_file_that_replays_itself_is_one_line_naming_it(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path)
    loop = tmp_path / "loop.txt"
    loop.write_text(f"a cat\n!replay {loop}\na dog\n")
    outcome = session.handle_line(f"!replay {loop}")
    assert outcome.flow is Flow.GO_ON
    assert err.getvalue().splitlines() == [
        f"error: !replay {loop}: {loop} replays itself ({loop} -> {loop}); stopped the replay "
        "there"]
    assert [request.prompt for request in runner.requests] == ["a cat"]


def test_a_cycle_through_two_files_is_one_line_naming_both(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text(f"one\n!replay {second}\n")
    second.write_text(f"two\n!replay {first}\nnever\n")
    assert session.run_lines([f"!replay {first}\n", "after\n"]) == 1
    errors = [line for line in err.getvalue().splitlines() if "replay" in line]
    message = (f"error: !replay {first}: {first} replays itself ({first} -> {second} -> "
               f"{first}); stopped the replay there")
    assert errors == [message, f"  line 1: {message}"]  # the line, and the run's summary
    assert [request.prompt for request in runner.requests] == ["one", "two", "after"]


def test_a_file_replayed_twice_in_a_row_is_no_cycle(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    inner, outer = tmp_path / "inner.txt", tmp_path / "outer.txt"
    inner.write_text("cat\n")
    outer.write_text(f"!replay {inner}\n!replay {inner}\n")
    assert session.run_lines([f"!replay {outer}\n"]) == 0
    assert [request.prompt for request in runner.requests] == ["cat", "cat"]
    assert err.getvalue() == ""
