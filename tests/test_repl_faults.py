"""Bytes and faults the REPL must survive: lines that are not UTF-8, control characters in
what is echoed, a picture without metadata, an unwritable or full output folder, out of
memory, and a model that cannot be loaded."""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dreamline import outputs
from dreamline.cli import main
from dreamline.errors import ModelError
from dreamline.outputs import OutputError
from dreamline.repl.context import ModelUnavailable
from dreamline.repl.history import InvokeHistory
from dreamline.repl.runner import ModelGenerators, OutOfMemory, Runner, SaveFailed
from dreamline.repl.settings import Settings
from dreamline.request import Request
from test_repl import FakeModels, make_session, run_typed
from test_repl_runner import FakeGenerator

CTRL_D = "\x04"


# ---- bytes that are not UTF-8 ------------------------------------------------------------

def test_a_line_that_is_not_utf8_fails_alone(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    status = session.run_bytes([b"a cat\n", b"bad \xff line\n", b"a dog\n"], source="x.txt")
    assert status == 1
    assert [r.prompt for r in runner.requests] == ["a cat", "a dog"]
    first = err.getvalue().splitlines()[0]
    assert first == ("error: line 2: not UTF-8 text (byte 0xff at byte offset 10 of the "
                     "input, 4 of the line); line skipped")


def lines_file_and_fake_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             data: bytes) -> tuple[Path, list[str]]:
    """A --from_file input holding ``data``, and the prompts the (fake) runner is given."""
    ran: list[str] = []
    monkeypatch.setattr(Runner, "run", lambda self, request, on_saved: ran.append(request.prompt))
    lines = tmp_path / "lines.txt"
    lines.write_bytes(data)
    return lines, ran


def test_from_file_with_bad_bytes_runs_the_other_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lines, ran = lines_file_and_fake_runs(tmp_path, monkeypatch,
                                          b"one -S 1\n\xc3\x28 broken\nthree -S 1\n")
    assert main(["-o", str(tmp_path / "out"), "--from_file", str(lines)]) == 1
    assert ran == ["one", "three"]
    err = capsys.readouterr().err
    assert "line 2: not UTF-8 text" in err and "Traceback" not in err


def test_replay_of_a_file_with_bad_bytes(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    replay = tmp_path / "replay.txt"
    replay.write_bytes(b"one\n\xfe\nthree\n")
    assert session.run_lines([f"!replay {replay}\n"]) == 1
    assert [r.prompt for r in runner.requests] == ["one", "three"]
    assert "line 2: not UTF-8" in err.getvalue() and "line(s) 2 failed" in err.getvalue()


def test_history_file_with_bad_bytes_keeps_the_good_entries(tmp_path: Path) -> None:
    path = tmp_path / ".invoke_history"
    path.write_bytes(b"\n# 2026\n+a cat\n\n# 2026\n+bad \xff\n\n# 2026\n+a dog\n")
    history = InvokeHistory(path)
    assert history.get_strings() == ["a cat", "a dog"]
    assert len(history.problems) == 1 and "line 6: not UTF-8" in history.problems[0]


def test_echo_shows_control_characters_escaped(tmp_path: Path) -> None:
    session, _, out, err = make_session(tmp_path, interactive=False)
    session.run_lines(["a \x1b[2Jred fox\n"])
    assert "#a \\x1b[2Jred fox" in out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue() and "\x1b" not in err.getvalue()


# ---- an empty prompt with a picture that has no metadata ----------------------------------

def test_empty_prompt_with_a_plain_picture_runs_with_the_empty_prompt(tmp_path: Path) -> None:
    session, runner, out, err = make_session(tmp_path, interactive=False)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert session.run_lines([f"-I {plain} -f 0.5\n"]) == 0
    assert runner.requests[0].prompt == "" and err.getvalue() == ""
    assert f">> {plain} has no stored prompt; running with the empty prompt" in \
        out.getvalue().splitlines()


@pytest.mark.parametrize("chunk, text, reason", [
    ("parameters", "a cat\nSteps: 3, Sampler: Euler a, CFG scale: abc, Seed: 1, Size: 32x32",
     "A1111 cfg_scale 'abc' is not a number"),
    ("sd-metadata", '{"image": {"prompt": 5}}',
     "its sd-metadata prompt 5 is not text or a list of {prompt, weight} entries"),
])
def test_empty_prompt_with_unreadable_metadata_says_why(tmp_path: Path, chunk: str, text: str,
                                                        reason: str) -> None:
    from PIL import PngImagePlugin

    session, runner, out, _ = make_session(tmp_path, interactive=False)
    picture = tmp_path / "bad.png"
    info = PngImagePlugin.PngInfo()
    info.add_text(chunk, text)
    Image.new("RGB", (8, 8)).save(picture, pnginfo=info)
    assert session.run_lines([f"-I {picture} -f 0.5\n"]) == 0
    assert runner.requests[0].prompt == ""
    lines = out.getvalue().splitlines()
    assert f">> the prompt stored in {picture} cannot be read ({reason}); running with the " \
        "empty prompt" in lines
    assert not any("has no stored prompt" in line for line in lines)


# ---- output folder and disk --------------------------------------------------------------

class CountingGenerator(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    def iter_generate(self, request: Request, *, init: Any = None, on_step: Any = None,
                      on_start: Any = None) -> Iterator[Any]:
        self.started += 1
        yield from super().iter_generate(request, on_step, on_start)


def make_runner(outdir: Path, generator: Any) -> tuple[Runner, list[str]]:
    said: list[str] = []
    return Runner(Settings(outdir=outdir), lambda: generator, say=said.append,
                  progress_stream=io.StringIO()), said


def test_unwritable_output_folder_fails_before_generating() -> None:
    unwritable = Path("/proc")  # exists, and not even root may create files there
    if not unwritable.is_dir():
        pytest.skip("needs /proc")
    generator = CountingGenerator()
    runner, _ = make_runner(unwritable, generator)
    with pytest.raises(OutputError, match="'/proc' is not writable"):
        runner.run(Request(prompt="a fox", steps=1), lambda path, seed: None)
    assert generator.started == 0


def test_full_disk_says_which_image_failed_and_logs_match_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = outputs.save_image
    calls: list[int] = []

    def save_or_fail(*args: Any, **kwargs: Any) -> Path:
        calls.append(1)
        if len(calls) == 2:
            raise OutputError("cannot write in 'x': No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(outputs, "save_image", save_or_fail)
    runner, said = make_runner(tmp_path, FakeGenerator())
    with pytest.raises(SaveFailed) as failed:
        runner.run(Request(prompt="a fox", steps=1, iterations=3), lambda path, seed: None)
    assert str(failed.value) == ("image 2/3 (seed 11) was not written: cannot write in 'x': No "
                                 "space left on device; kept 1 image(s), stopped the command")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["000001.10.png"]
    log = (tmp_path / "invoke_log.txt").read_text().splitlines()
    assert len(log) == 1 and "000001.10.png" in log[0]
    assert said[0] == "Outputs:" and said[-1].startswith(">> 1 image(s) in ")


def test_a_log_that_cannot_be_written_does_not_hide_the_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_logs(*args: Any) -> None:
        raise OutputError("cannot append to the logs in 'x': No space left on device")

    monkeypatch.setattr(outputs, "append_logs", no_logs)
    runner, said = make_runner(tmp_path, FakeGenerator(1, RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        runner.run(Request(prompt="a fox", steps=1, iterations=2), lambda path, seed: None)
    assert ">> the 1 file(s) above are not in the logs: cannot append to the logs in 'x': " \
           "No space left on device" in said


# ---- out of memory -----------------------------------------------------------------------

class Held:
    """Stands for the tensors a request holds."""


class OutOfMemoryGenerator(FakeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.held: weakref.ref[Held] | None = None

    def iter_generate(self, request: Request, *, init: Any = None, on_step: Any = None,
                      on_start: Any = None) -> Iterator[Any]:
        latents = Held()
        self.held = weakref.ref(latents)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not "
                           "enough memory: you tried to allocate 34359738368 bytes.")
        yield  # a generator function


def test_out_of_memory_is_one_line_and_frees_what_the_request_held(tmp_path: Path) -> None:
    generator = OutOfMemoryGenerator()
    runner, _ = make_runner(tmp_path, generator)
    with pytest.raises(OutOfMemory) as failed:
        runner.run(Request(prompt="a fox", steps=1, width=4096, height=4096),
                   lambda path, seed: None)
    assert str(failed.value).startswith("out of memory at 4096x4096; try --fit or a smaller "
                                        "-W/-H")
    assert failed.value.__cause__ is None and failed.value.__context__ is None
    del failed
    gc.collect()
    assert generator.held is not None and generator.held() is None  # nothing keeps it alive


def test_out_of_memory_in_the_session_is_an_error_line_and_the_next_line_runs(
        tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    real_run = runner.run

    def first_fails(request: Request, on_saved: Any) -> None:
        if request.prompt == "big":
            raise OutOfMemory("out of memory at 4096x4096; try --fit or a smaller -W/-H")
        real_run(request, on_saved)

    runner.run = first_fails  # type: ignore[method-assign]
    assert session.run_lines(["big\n", "small\n"]) == 1
    assert err.getvalue().splitlines()[0] == \
        "error: out of memory at 4096x4096; try --fit or a smaller -W/-H"
    assert [r.prompt for r in runner.requests] == ["small"]


# ---- a model that cannot be loaded -------------------------------------------------------

class BrokenModels(FakeModels):
    """Its current model fails to load (until !switch to another)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def current(self) -> str:
        if self.now == "tiny":
            self.loads += 1
            raise ModelError("tiny.safetensors: not an SD 1.x checkpoint")
        return self.now


class ModelRunner:
    """Needs the model for every request, as the real runner does (ModelGenerators)."""

    def __init__(self, models: FakeModels) -> None:
        self.models = models
        self.ran: list[str] = []

    def run(self, request: Request, on_saved: Any) -> None:
        try:
            self.models.current()
        except ModelError as exc:
            raise ModelUnavailable(exc) from None
        self.ran.append(request.prompt)


def test_model_generators_turn_a_load_failure_into_model_unavailable() -> None:
    with pytest.raises(ModelUnavailable, match="not an SD 1.x checkpoint"):
        ModelGenerators(BrokenModels())()


def test_from_file_stops_at_once_when_the_model_cannot_load(tmp_path: Path) -> None:
    from dreamline.repl.session import Session

    session, _, _, err = make_session(tmp_path, interactive=False)
    models = BrokenModels()
    stopped = Session(session.settings, models, ModelRunner(models), interactive=False,
                      out=io.StringIO(), err=err)
    assert stopped.run_lines(["one\n", "two\n", "three\n"]) == 2
    assert models.loads == 1
    lines = err.getvalue().splitlines()
    assert lines[0] == ("error: the model cannot be loaded: tiny.safetensors: not an SD 1.x "
                        "checkpoint")
    assert lines[-1] == "stopped: no line of input can run without a model"


def test_the_prompt_stays_usable_and_switch_recovers(tmp_path: Path) -> None:
    from dreamline.repl.session import Session

    session, _, _, err = make_session(tmp_path)
    models = BrokenModels()
    runner = ModelRunner(models)
    usable = Session(session.settings, models, runner, interactive=True, out=io.StringIO(),
                     err=err)
    assert run_typed(usable, "one\r!switch other\rtwo\r" + CTRL_D) == 0
    assert runner.ran == ["two"]
    assert "!switch to another model" in err.getvalue()


def test_bad_model_at_start_with_from_file_exits_2_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lines, ran = lines_file_and_fake_runs(tmp_path, monkeypatch, b"a fox -S 1\n")
    status = main(["-o", str(tmp_path / "out"), "--model", str(tmp_path / "nothing.ckpt"),
                   "--from_file", str(lines)])
    assert status == 2 and ran == []
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --model {tmp_path / 'nothing.ckpt'}: ")


def test_bad_model_at_the_prompt_falls_back_to_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from dreamline import cli
    from dreamline.repl.session import Session

    made: list[str | None] = []

    def fake_manager(settings: Settings, wanted: str | None) -> FakeModels:
        made.append(wanted)
        models = BrokenModels()
        models.now = "tiny" if wanted is not None else "other"
        return models

    used: list[Any] = []
    monkeypatch.setattr(cli, "make_model_manager", fake_manager)
    monkeypatch.setattr(cli, "make_prompt_session", lambda session: None)
    monkeypatch.setattr(Session, "run_interactive",
                        lambda self, prompt: used.append(self.models.current()) or 0)
    monkeypatch.setattr("sys.stdin", type("Tty", (), {"isatty": lambda self: True})())
    assert main(["-o", str(tmp_path), "--model", "tiny"]) == 0
    assert made == ["tiny", None] and used == ["other"]
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: --model tiny: tiny.safetensors: not an SD 1.x checkpoint; using "
                   "the default model instead"]


def test_intermediates_that_cannot_be_written_do_not_blame_the_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_room(*args: Any) -> Path:
        raise OutputError("cannot write in 'steps': No space left on device")

    monkeypatch.setattr(outputs, "save_step", no_room)
    runner, _ = make_runner(tmp_path, FakeGenerator())
    with pytest.raises(SaveFailed) as failed:
        runner.run(Request(prompt="a fox", steps=2, iterations=2, save_intermediates=1),
                   lambda path, seed: None)
    assert str(failed.value) == ("the intermediate steps of image 1 were not written: cannot "
                                 "write in 'steps': No space left on device; kept 1 image(s), "
                                 "stopped the command")
    assert (tmp_path / "000001.10.png").is_file()


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_prompt_text() -> None:
    from dreamline.repl.lines import decode_lines

    lines = list(decode_lines([b"\xef\xbb\xbffire -s 2\n", b"\xef\xbb\xbfsecond\n"]))
    assert lines[0].text == "fire -s 2"
    assert lines[1].text == "\ufeffsecond"  # only the file's first bytes are a BOM


def test_a_device_as_init_image_is_not_a_regular_file(tmp_path: Path) -> None:
    from dreamline.errors import DreamlineError
    from dreamline.repl.inputs import find_image

    with pytest.raises(DreamlineError, match="'/dev/null': is a character device, not a "
                                             "regular file; expected a PNG"):
        find_image("/dev/null", tmp_path)


def test_the_echo_escapes_invisible_formatting_characters_too() -> None:
    from dreamline.repl.lines import shown

    assert shown("fire \u202e -s 2") == "fire \\u202e -s 2"  # would turn the terminal's text
    family = "\U0001f468\u200d\U0001f469"
    assert shown(family) == family  # emoji joiners are text
