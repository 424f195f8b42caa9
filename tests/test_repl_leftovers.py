"""Leftovers of the REPL's error policy: a file that replays itself (or a cycle of files) is
one line naming it, and a batch run's line hooks fail inside the policy (one line, the
traceback in the log), never out of the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

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


class BrokenHooks:
    """Line hooks that fail the way a batch run's can: a full disk under the manifest, a bug."""

    def __init__(self, before: BaseException | None = None,
                 after: BaseException | None = None) -> None:
        self.before_error, self.after_error = before, after
        self.seen: list[int] = []

    def before(self, number: int, line: str) -> bool:
        if self.before_error is not None:
            raise self.before_error
        return False

    def after(self, number: int, line: str, finished: object, error: str | None) -> None:
        self.seen.append(number)
        if self.after_error is not None:
            raise self.after_error


def test_a_hook_that_fails_after_a_line_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    hooks = BrokenHooks(after=OSError(28, "No space left on device"))
    session.hooks = hooks
    assert session.run_lines(["a cat\n", "a dog\n"]) == 1
    assert [request.prompt for request in runner.requests] == ["a cat", "a dog"]
    assert hooks.seen == [1, 2]
    shown = [line for line in err.getvalue().splitlines() if line.startswith("internal error")]
    log = session.settings.error_log_path
    assert shown == [f"internal error: OSError: [Errno 28] No space left on device (details in "
                     f"{log})"] * 2
    assert log.read_text().count("Traceback") == 2 and "line hook" in log.read_text()


def test_a_hook_that_fails_before_a_line_runs_the_line_and_says_so(tmp_path: Path) -> None:
    from dreamline.errors import DreamlineError

    session, runner, _, err = make_session(tmp_path, interactive=False)
    session.hooks = BrokenHooks(before=DreamlineError("the manifest cannot be read"))
    assert session.run_lines(["a cat\n"]) == 1
    assert [request.prompt for request in runner.requests] == ["a cat"]
    assert err.getvalue().splitlines()[0] == "error: the manifest cannot be read"


def test_a_damaged_manifest_record_is_one_warning_and_resume_redoes_that_line(
        tmp_path: Path) -> None:
    import json

    from dreamline.batch.manifest import MANIFEST_NAME
    from test_batch_resume import LINES, run

    run(tmp_path, LINES)
    path = tmp_path / MANIFEST_NAME
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[0]["seeds"] = ["eleven"]  # line 1's record, edited by hand
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    status, runner, out = run(tmp_path, LINES, resume=True)
    assert status == 0
    assert [request.prompt for request in runner.requests] == ["one"]  # only the damaged one
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {path}: the record of line 1 is damaged (invalid literal for "
                        "int() with base 10: 'eleven'); expected a list of file names and "
                        "whole-number seeds: that line runs again"]


def test_resume_with_an_unreadable_manifest_is_one_line_and_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dreamline.batch.manifest import MANIFEST_NAME
    from dreamline.cli import main

    lines = tmp_path / "prompts.txt"
    lines.write_text("a cat\n")
    (tmp_path / MANIFEST_NAME).mkdir()  # not a file: it cannot be read
    assert main(["-o", str(tmp_path), "--from_file", str(lines), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"dreamline: error: cannot read the manifest "
                                f"{tmp_path / MANIFEST_NAME}: Is a directory"]


def test_replaying_a_picture_is_one_line_pointing_at_fetch(tmp_path: Path) -> None:
    """A new user's finding: !replay of a PNG said 7 line errors (its bytes split at newlines)."""
    from PIL import Image

    session, runner, _, err = make_session(tmp_path)
    picture = tmp_path / "made.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(picture)
    outcome = session.handle_line(f"!replay {picture}")
    assert outcome.error == (f"error: !replay {picture}: not a text file; expected prompt "
                             "lines, one a line; !fetch reads the command stored in a picture")
    assert err.getvalue().splitlines() == [outcome.error] and runner.requests == []


@pytest.mark.parametrize("line", ["!history extra", "!clear all of it", "!models x",
                                  "!help me", "!embeddings x"])
def test_a_command_that_takes_nothing_refuses_what_follows(tmp_path: Path, line: str) -> None:
    """A new user's finding: '!clear extra' cleared the history without a word."""
    session, runner, _, err = make_session(tmp_path)
    session.history.append_string("a cat")
    word, extra = line[1:].split(" ", 1)
    outcome = session.handle_line(line)
    assert outcome.error == f"error: !{word}: takes nothing after it; got {extra!r}"
    assert "a cat" in session.history.get_strings()  # nothing was cleared
