"""The invoke> REPL driven through a real prompt_toolkit PromptSession (pipe input, no terminal).

The runner is a fake that records requests, so these tests need no model and run in
milliseconds; tests/test_e2e_cli.py runs the real thing.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dreamline.cli import build_parser, settings_from_args
from dreamline.errors import DreamlineError
from dreamline.regular_files import IMAGE_FILE
from dreamline.repl.commands import COMMANDS, help_lines
from dreamline.repl.history import InvokeHistory
from dreamline.repl.prompt import make_prompt_session
from dreamline.repl.session import LastCommand, Session
from dreamline.request import Request, RequestError

CTRL_D = "\x04"
CTRL_C = "\x03"


class FakeModels:
    """A ModelManager (repl/context.py) with two models, 'tiny' current; nothing loads."""

    device_label = "cpu float32"
    problem: str | None = None  # the models file is in use

    def __init__(self, cfg_scales: dict[str, float] | None = None,
                 samplers: dict[str, tuple[str, str]] | None = None) -> None:
        self.switched: list[str] = []
        self.cfg_scales = cfg_scales if cfg_scales is not None else {}  # registry cfg_scale
        self.samplers = samplers if samplers is not None else {}  # registry sampler, schedule
        self.now = "tiny"
        self.label = "fake-tiny"  # "<name> [<hash>]" in the real one

    def names(self) -> list[str]:
        return ["tiny", "other"]

    def describe(self) -> list[str]:
        return ["models:", "  tiny (default)"]

    def default_cfg(self) -> tuple[str, float, str] | None:
        if self.now not in self.cfg_scales:
            return None
        return self.now, self.cfg_scales[self.now], "its models.yaml entry"

    def default_sampler(self) -> tuple[str, str, str, str] | None:
        if self.now not in self.samplers:
            return None
        return self.now, *self.samplers[self.now], "its models.yaml entry"

    def native_size(self) -> tuple[str, int, int] | None:
        return None

    def loaded_multiple(self) -> int | None:
        return None

    def current(self) -> str:
        return self.now

    def switch(self, name: str) -> str:
        if name not in self.names():
            raise DreamlineError(f"unknown model {name!r}")
        self.switched.append(name)
        self.now = name
        self.label = f"fake-{name}"
        return name

    def release(self) -> None:
        pass


class FakeRunner:
    """Records each request and 'saves' one file per iteration with seeds 100, 101, ..."""

    def __init__(self, outdir: Path, models: FakeModels) -> None:
        self.outdir = outdir
        self.models = models
        self.requests: list[Request] = []

    @property
    def switched(self) -> list[str]:
        return self.models.switched

    def run(self, request: Request, on_saved: Callable[[Path, int], None]) -> None:
        self.requests.append(request)
        for index in range(request.iterations):
            seed = 100 + len(self.requests) * 10 + index
            path = self.outdir / f"{len(self.requests):06d}.{seed}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(path)
            on_saved(path, seed)


def make_session(tmp_path: Path, *, interactive: bool = True, launch: tuple[str, ...] = (),
                 cfg_scales: dict[str, float] | None = None,
                 samplers: dict[str, tuple[str, str]] | None = None
                 ) -> tuple[Session, FakeRunner, io.StringIO, io.StringIO]:
    """A session on a fake runner; ``launch`` are dreamline's launch options (read by cli.py),
    ``cfg_scales`` the registry cfg_scale of the fake models ('tiny' is current at start)."""
    outdir = tmp_path / "out"
    models = FakeModels(cfg_scales, samplers)
    runner = FakeRunner(outdir, models)
    out, err = io.StringIO(), io.StringIO()
    settings = settings_from_args(build_parser().parse_args(["-o", str(outdir), *launch]))
    session = Session(settings, models, runner, interactive=interactive, out=out, err=err)
    return session, runner, out, err


def run_typed(session: Session, keys: str) -> int:
    """Type ``keys`` into a real PromptSession and run the loop until it ends."""
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        prompt = make_prompt_session(session, input=pipe, output=DummyOutput())
        return session.run_interactive(prompt)


def completions(session: Session, text: str) -> list[str]:
    completer = make_prompt_session(session, output=DummyOutput()).completer
    assert completer is not None
    found = completer.get_completions(Document(text, len(text)), CompleteEvent(True))
    return [completion.text for completion in found]


def png_with_command(path: Path, command: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Dream", command)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, pnginfo=info)
    return path


# ---- typing and submitting ------------------------------------------------------------------

def test_typed_line_and_enter_runs_it(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path)
    status = run_typed(session, "a red fox -s 5 -S 42\r" + CTRL_D)
    assert status == 0
    assert [(r.prompt, r.steps, r.seed) for r in runner.requests] == [("a red fox", 5, 42)]
    assert out.getvalue().rstrip().endswith("goodbye!")


def test_defaults_apply_per_line_only(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)
    session.defaults = Request(steps=20, cfg_scale=9.0)
    run_typed(session, "one -s 7\rtwo\r" + CTRL_D)
    assert [(r.steps, r.cfg_scale) for r in runner.requests] == [(7, 9.0), (20, 9.0)]


def test_q_quits_and_ctrl_c_clears_the_line(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path)
    run_typed(session, "half typed" + CTRL_C + "kept line\rq\rnever run\r")
    assert [r.prompt for r in runner.requests] == ["kept line"]
    assert "goodbye!" in out.getvalue()


def test_recall_of_previous_seeds_and_images(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)
    run_typed(session, "first -n 2\rsecond -S -1 -I -2\r" + CTRL_D)
    first_seeds = session.seeds_used[:2]
    second = runner.requests[1]
    assert second.seed == first_seeds[1]
    assert second.init_img is not None and second.init_img.endswith(f".{first_seeds[0]}.png")


def test_history_is_kept_in_the_outdir(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    run_typed(session, "a lake\r" + CTRL_D)
    again, _, _, _ = make_session(tmp_path)
    assert again.history.get_strings() == ["a lake"]
    assert (tmp_path / "out" / ".invoke_history").is_file()


@pytest.mark.parametrize("quit_line", ["q", "quit", "exit", " exit "])
def test_quitting_is_not_kept_in_the_history(tmp_path: Path, quit_line: str) -> None:
    session, _, _, _ = make_session(tmp_path)
    run_typed(session, f"a lake\r{quit_line}\r")
    again, _, _, _ = make_session(tmp_path)
    assert again.history.get_strings() == ["a lake"]
    assert session.history.get_strings() == ["a lake"]


def test_a_prompt_that_only_starts_like_quit_is_kept(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    run_typed(session, "exit the cave\r" + CTRL_D)
    assert session.history.get_strings() == ["exit the cave"]


# ---- errors ----------------------------------------------------------------------------------

def test_bad_line_is_one_red_line_and_the_loop_goes_on(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    status = session.run_lines(["a cat -G 0.5\n", "a dog -s 3\n"])
    assert status == 1
    assert [r.prompt for r in runner.requests] == ["a dog"]
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("error: ") and "gfpgan" in lines[0] and "not supported" in lines[0]
    assert any(line.strip().startswith("line 1: error:") for line in lines)


def test_internal_error_logs_the_traceback(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)

    def boom(request: Request, on_saved: Callable[[Path, int], None]) -> None:
        on_saved(tmp_path / "000001.5.png", 5)
        raise RuntimeError("CUDA out of memory")

    runner.run = boom  # type: ignore[method-assign]
    assert session.run_lines(["a cat\n", "q\n", "not run\n"]) == 1
    line = err.getvalue().splitlines()[0]
    assert line.startswith("internal error: RuntimeError: CUDA out of memory (details in ")
    log = (tmp_path / "out" / "dreamline-errors.log").read_text()
    assert "Traceback" in log and "CUDA out of memory" in log
    assert session.last.images == [str(tmp_path / "000001.5.png")]  # finished images are kept


def test_comments_blank_lines_and_echo(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False)
    assert session.run_lines(["# note\n", "\n", "// other\n", "a cat\n"]) == 0
    assert [r.prompt for r in runner.requests] == ["a cat"]
    assert "#a cat" in out.getvalue().splitlines()


# ---- completion ------------------------------------------------------------------------------

def test_switch_names_after_dash(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    found = completions(session, "a cat --st")
    assert "--steps " in found and "--strength " in found and "--seed " not in found
    assert {"-s ", "-S ", "-W "} <= set(completions(session, "a cat -"))  # the space after


def test_tab_completes_in_a_real_prompt(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)
    run_typed(session, "a cat --ste\t 4\r" + CTRL_D)  # (the pipe types faster than Tab completes)
    assert runner.requests[0].steps == 4


def test_image_paths_after_init_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "my cat.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "pics").mkdir()
    (tmp_path / "two words").mkdir()
    session, _, _, _ = make_session(tmp_path)
    found = completions(session, "a cat -I ")
    assert "cat.png" in found and '"my cat.png"' in found
    assert "pics/" in found and '"two words/' in found
    assert "notes.txt" not in found
    assert completions(session, "x -M pi") == ["pics/"]
    assert completions(session, '!fetch "my') == ['"my cat.png"']


def test_seeds_of_this_session_after_seed_switch(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    session.seeds_used.extend([1234, 42, 1299])
    assert completions(session, "a cat -S ") == ["1299", "42", "1234"]
    assert completions(session, "a cat -S 12") == ["1299", "1234"]


def test_commands_after_bang(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    everything = completions(session, "!")
    assert {"fetch", "history", "search", "clear", "models", "switch", "replay", "help"} <= \
        {name.strip() for name in everything}
    assert completions(session, "!he") == ["help"]
    assert completions(session, "!switch o") == ["other"]


def test_a_command_that_takes_an_argument_completes_with_a_space(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    assert completions(session, "!sw") == ["switch "]
    assert completions(session, "!fe") == ["fetch "]
    assert completions(session, "!rep") == ["replay "]
    assert completions(session, "!hi") == ["history"]  # takes nothing: no space
    assert completions(session, "!cl") == ["clear"]


# ---- validation ------------------------------------------------------------------------------

def test_validator_refuses_an_unparsable_line_and_shows_why(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)

    async def scenario() -> tuple[str, str]:
        with create_pipe_input() as pipe:
            prompt = make_prompt_session(session, input=pipe, output=DummyOutput())
            task = asyncio.ensure_future(prompt.prompt_async("invoke> "))
            pipe.send_text("a cat -s lots\r")
            for _ in range(100):
                await asyncio.sleep(0.01)
                if prompt.default_buffer.validation_error is not None:
                    break
            error = prompt.default_buffer.validation_error
            message = error.message if error is not None else "<none>"
            pipe.send_text("\x15a cat -s 3\r")  # Ctrl-U drops the line; type a good one
            return message, await task

    message, accepted = asyncio.run(scenario())
    assert "-s/--steps" in message and "'lots'" in message
    assert accepted == "a cat -s 3"
    assert runner.requests == []  # the validator never runs anything


def test_validator_accepts_commands_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from dreamline.repl.validator import check_line

    session, _, _, _ = make_session(tmp_path)
    for line in ("", "# comment", "!history", "!fetch whatever.png", "q", "a cat -s 3"):
        check_line(line, session.check_line)
    with pytest.raises(DreamlineError, match="no such command"):
        check_line("!nope", session.check_line)
    with pytest.raises(RequestError):
        check_line('a "cat -s 3', session.check_line)


# ---- commands --------------------------------------------------------------------------------

def test_fetch_puts_the_stored_command_on_the_next_prompt(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)
    (tmp_path / "out").mkdir()
    command = '"a red fox" -s 7 -S 42 -W 64 -H 64 -C 7.5 -A k_lms'
    png_with_command(tmp_path / "out" / "000001.42.png", command)
    # the file is found inside the output dir; Enter accepts the pre-filled line as it is
    run_typed(session, "!fetch 000001.42.png\r\r" + CTRL_D)
    assert [(r.prompt, r.steps, r.seed, r.width) for r in runner.requests] == \
        [("a red fox", 7, 42, 64)]


def test_fetch_and_recall_in_a_pipe_show_the_command_and_say_it_did_not_run(
        tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False)
    (tmp_path / "out").mkdir()
    command = '"a red fox" -s 7 -S 42 -W 64 -H 64 -C 7.5 -A k_lms'
    png_with_command(tmp_path / "out" / "000001.42.png", command)
    assert session.run_lines(["!fetch 000001.42.png\n", "a cat\n", "!2\n"]) == 0
    said = out.getvalue()
    assert "edit it and press Enter" not in said
    assert f">> the command of {tmp_path / 'out' / '000001.42.png'}:\n{command}\n" in said
    assert said.count(">> not run: a file or pipe has no input line to edit it on") == 2
    assert [r.prompt for r in runner.requests] == ["a cat"]


def test_fetch_prints_what_the_command_cannot_replay(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path)
    (tmp_path / "out").mkdir()
    png_with_command(tmp_path / "out" / "old.png",
                     '"a red fox" -s 7 -S 42 -W 64 -H 64 -C 7.5 -A k_lms -G 0.9')
    run_typed(session, "!fetch old.png\r\r" + CTRL_D)
    assert "-G (face restoration)" in out.getvalue()
    assert [(r.prompt, r.seed) for r in runner.requests] == [("a red fox", 42)]


def test_fetch_names_the_loras_the_folder_lacks(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path)
    session.settings.lora_folder = tmp_path / "loras"
    (tmp_path / "loras").mkdir()
    (tmp_path / "out").mkdir()
    png_with_command(tmp_path / "out" / "l.png",
                     '"a red fox <lora:gone:0.5>" -s 7 -S 42 -W 64 -H 64 -C 7.5 -A k_lms')
    run_typed(session, "!fetch l.png\r\r" + CTRL_D)
    assert (f">> LoRA file(s) not found in {tmp_path / 'loras'}: gone; the command needs them "
            "there (or give a path)") in out.getvalue().splitlines()


def test_fetch_of_a_missing_file_is_one_error(tmp_path: Path) -> None:
    session, _, _, err = make_session(tmp_path)
    run_typed(session, "!fetch nothing.png\r" + CTRL_D)
    assert err.getvalue().startswith("error: image 'nothing.png': no such file")


def test_init_image_that_is_a_directory_says_so(tmp_path: Path) -> None:
    session, runner, _, err = make_session(tmp_path, interactive=False)
    (tmp_path / "pictures").mkdir()
    assert session.run_lines([f"a cat -I {tmp_path / 'pictures'}\n"]) == 1
    folder = tmp_path / "pictures"
    assert f"error: init image '{folder}': is a directory; expected {IMAGE_FILE}" in \
        err.getvalue().splitlines()
    assert runner.requests == []


def test_history_search_recall_and_clear(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path)
    run_typed(session, "a red fox\ra blue bird -s 3\r!history\r!search BIRD\r!2\r\r" + CTRL_D)
    text = out.getvalue()
    assert "   1  a red fox" in text and "   2  a blue bird -s 3" in text
    assert text.count("   2  a blue bird -s 3") == 2  # listed by !history, found by !search
    lines = text.splitlines()
    found = lines[lines.index("   3  !history") + 1]
    assert found == "   2  a blue bird -s 3"  # !search lists the match ...
    assert not any("!search BIRD" in line for line in lines)  # ... but not its own line
    # !2 put 'a blue bird -s 3' on the input line and Enter ran it again
    assert [r.prompt for r in runner.requests] == ["a red fox", "a blue bird", "a blue bird"]

    session.history.clear()
    assert session.history.numbered() == []
    assert InvokeHistory(tmp_path / "out" / ".invoke_history").get_strings() == []
    session2, _, out2, err2 = make_session(tmp_path)
    run_typed(session2, "!history\r!3\r" + CTRL_D)
    assert "!history" in session2.history.get_strings()[0]
    assert "no such history line" in err2.getvalue()


def test_switch_models_help_and_replay(tmp_path: Path) -> None:
    session, runner, out, err = make_session(tmp_path, interactive=False)
    replay = tmp_path / "lines.txt"
    replay.write_text("# replayed\none -s 2\ntwo -s nope\nthree\n")
    status = session.run_lines(["!models\n", "!switch other\n", "!switch missing\n",
                                f"!replay {replay}\n", "!help\n"])
    assert status == 1
    assert runner.switched == ["other"]
    assert [r.prompt for r in runner.requests] == ["one", "three"]
    text = out.getvalue()
    assert "  tiny (default)" in text and "#one -s 2" in text
    for command in COMMANDS:
        assert command.shown_name in "\n".join(help_lines()) or command.pattern is not None
    assert "!replay" in text and "!N" in text
    errors = err.getvalue()
    assert "unknown model 'missing'" in errors and "line(s) 3 failed" in errors


def test_empty_prompt_with_init_image_reuses_its_prompt(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False)
    image = png_with_command(tmp_path / "old.png", '"a stone bridge" -s 9 -S 3 -A k_lms')
    assert session.run_lines([f"-I {image} -f 0.5\n"]) == 0
    assert runner.requests[0].prompt == "a stone bridge"
    assert runner.requests[0].init_img == str(image)


def test_recall_error_names_the_switch_once(tmp_path: Path) -> None:
    session, _, _, err = make_session(tmp_path, interactive=False)
    session.last = LastCommand(seeds=[7], images=["a.png"])
    assert session.run_lines(["a cat -S -5\n"]) == 1
    assert "error: -S/--seed: -5 has no seed to reuse: the previous command made 1 image(s); " \
           "expected -1 to -1" in err.getvalue().splitlines()


def test_last_command_recall_bounds() -> None:
    last = LastCommand(seeds=[1, 2], images=["a.png", "b.png"])
    assert last.seed(1) == 2 and last.image(2) == "a.png"
    with pytest.raises(RequestError, match="expected -1 to -2"):
        last.seed(3)
    with pytest.raises(RequestError, match="no previous command"):
        LastCommand().image(1)


def test_toolbar_defaults_cover_every_launch_switch() -> None:
    from dreamline.repl.toolbar import describe_defaults
    from dreamline.switches import launch_switches

    defaults = Request(steps=30, width=512, height=384, cfg_scale=9.0, sampler="ddim",
                       strength=0.5, grid=True)
    assert describe_defaults(defaults) == "-s 30 -W 512 -H 384 -C 9 -A ddim -f 0.5 -g"
    words = describe_defaults(defaults).split()
    assert all(switch.shorts[0] in words for switch in launch_switches())


def test_toolbar_shows_model_device_and_defaults(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    session.defaults = Request(steps=30, width=512, height=384, cfg_scale=9.0, sampler="ddim")
    toolbar = make_prompt_session(session, output=DummyOutput()).bottom_toolbar
    assert callable(toolbar)
    text = "".join(fragment[1] for fragment in toolbar())
    assert "fake-tiny" in text and "cpu float32" in text
    assert "-s 30 -W 512 -H 384 -C 9 -A ddim -f 0.75" in text


# ---- the default guidance scale: line > launch > model entry > 7.5 ------------------------

@pytest.mark.parametrize("line, launch, model_scale, expected", [
    ("a fox -C 2", ("-C", "9"), 4.0, 2.0),     # the line's own -C beats everything
    ("a fox -C 0", (), 4.0, 0.0),              # 0 is a real value, not "not given"
    ("a fox", ("-C", "9"), 4.0, 9.0),          # launch -C beats the model's
    ("a fox", ("--cfg_scale", "7.5"), 4.0, 7.5),  # even when it equals the built-in 7.5
    ("a fox", ("-C", "0"), 4.0, 0.0),
    ("a fox", ("-s", "9"), 4.0, 4.0),          # other launch options leave the model's -C
    ("a fox", (), 4.0, 4.0),                   # the model entry's cfg_scale
    ("a fox", (), None, 7.5),                  # nothing anywhere: 7.5
])
def test_default_cfg_scale_precedence(tmp_path: Path, line: str, launch: tuple[str, ...],
                                      model_scale: float | None, expected: float) -> None:
    scales = {} if model_scale is None else {"tiny": model_scale}
    session, runner, _, _ = make_session(tmp_path, interactive=False, launch=launch,
                                         cfg_scales=scales)
    assert session.parse_line(line).request.cfg_scale == expected
    assert session.run_lines([line + "\n"]) == 0  # and what runs is what was parsed
    assert runner.requests[0].cfg_scale == expected


def test_model_default_is_said_in_one_line_and_shown_in_the_toolbar(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path, cfg_scales={"tiny": 4.0})
    assert out.getvalue().splitlines() == [
        ">> guidance scale -C 4.0 by default for model 'tiny' (its models.yaml entry)"]
    toolbar = make_prompt_session(session, output=DummyOutput()).bottom_toolbar
    assert callable(toolbar)
    assert " -C 4 " in "".join(fragment[1] for fragment in toolbar())


def test_nothing_said_when_launch_cfg_scale_or_no_model_default(tmp_path: Path) -> None:
    _, _, out, _ = make_session(tmp_path, launch=("-C", "6"), cfg_scales={"tiny": 4.0})
    assert out.getvalue() == ""
    _, _, out, _ = make_session(tmp_path / "2", cfg_scales={})
    assert out.getvalue() == ""


def test_switch_changes_the_default_cfg_scale(tmp_path: Path) -> None:
    session, runner, out, err = make_session(tmp_path, interactive=False,
                                             cfg_scales={"tiny": 4.0})
    status = session.run_lines(["a -S 1\n", "!switch other\n", "b -S 1\n", "!switch missing\n",
                                "c -S 1\n", "!switch tiny\n", "d -S 1\n", "e -S 1 -C 3\n"])
    assert status == 1  # only the unknown model failed
    assert [r.cfg_scale for r in runner.requests] == [4.0, 7.5, 7.5, 4.0, 3.0]
    said = [line for line in out.getvalue().splitlines() if "guidance scale" in line]
    assert said == [
        ">> guidance scale -C 4.0 by default for model 'tiny' (its models.yaml entry)",
        ">> guidance scale -C 7.5 by default again (the model sets no cfg_scale of its own)",
        ">> guidance scale -C 4.0 by default for model 'tiny' (its models.yaml entry)",
    ]
    assert session.defaults.cfg_scale == 4.0 and "unknown model 'missing'" in err.getvalue()


def test_model_defaults_said_once_when_the_same_model_is_used_again(tmp_path: Path) -> None:
    # The Ray driver hands the session a new manager for the same model: nothing new to say.
    session, _, out, _ = make_session(tmp_path, interactive=False, cfg_scales={"tiny": 4.0},
                                      samplers={"tiny": ("k_euler", "model")})
    session.use_models(session.models)
    said = [line for line in out.getvalue().splitlines() if "by default" in line]
    assert said == [
        ">> sampler -A k_euler by default for model 'tiny' (its models.yaml entry)",
        ">> guidance scale -C 4.0 by default for model 'tiny' (its models.yaml entry)"]


def test_switch_to_the_model_in_use_says_so(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path, interactive=False, cfg_scales={"tiny": 4.0})
    assert session.run_lines(["!switch tiny\n", "!switch other\n"]) == 0
    said = out.getvalue().splitlines()
    assert said.count(">> already using fake-tiny; nothing changed") == 1
    assert not any("already using fake-other" in line for line in said)


def test_switch_keeps_a_launch_cfg_scale(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False, launch=("-C", "6"),
                                           cfg_scales={"tiny": 4.0, "other": 5.0})
    assert session.run_lines(["a -S 1\n", "!switch other\n", "b -S 1\n"]) == 0
    assert [r.cfg_scale for r in runner.requests] == [6.0, 6.0]
    assert "guidance scale" not in out.getvalue()


@pytest.mark.parametrize("line, launch, expected", [
    ("a fox", (), ("k_dpmpp_2m", "karras")),                 # the model entry's sampler
    ("a fox -A ddim", (), ("ddim", "model")),                # a -A on the line wins, whole
    ("a fox -A k_euler", (), ("k_euler", "model")),
    ('a fox -A "Euler Karras"', (), ("k_euler", "karras")),
    ("a fox --schedule exponential", (), ("k_dpmpp_2m", "exponential")),
    ("a fox --karras", (), ("k_dpmpp_2m", "model")),         # karras flag: schedule stays model
    ("a fox", ("-A", "k_heun"), ("k_heun", "model")),        # a launch -A beats the model's
    ("a fox", ("-A", "LMS Karras"), ("k_lms", "karras")),
    ("a fox", ("-s", "9"), ("k_dpmpp_2m", "karras")),        # other launch options leave it
])
def test_default_sampler_precedence(tmp_path: Path, line: str, launch: tuple[str, ...],
                                    expected: tuple[str, str]) -> None:
    session, runner, _, _ = make_session(tmp_path, interactive=False, launch=launch,
                                         samplers={"tiny": ("k_dpmpp_2m", "karras")})
    parsed = session.parse_line(line).request
    assert (parsed.sampler, parsed.schedule) == expected
    assert session.run_lines([line + "\n"]) == 0
    assert (runner.requests[0].sampler, runner.requests[0].schedule) == expected


def test_model_sampler_is_said_shown_and_follows_switch(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, samplers={"tiny": ("k_dpmpp_2m", "karras")})
    assert out.getvalue().splitlines() == [
        ">> sampler -A k_dpmpp_2m --schedule karras by default for model 'tiny' (its models.yaml "
        "entry)"]
    toolbar = make_prompt_session(session, output=DummyOutput()).bottom_toolbar
    assert callable(toolbar)
    drawn = "".join(fragment[1] for fragment in toolbar())
    assert "-A k_dpmpp_2m" in drawn and "--schedule karras" in drawn
    session.run_lines(["a fox -h -A\n"])
    assert "(model default k_dpmpp_2m)" in out.getvalue()
    session.run_lines(["a -S 1\n", "!switch other\n", "b -S 1\n", "!switch tiny\n", "c -S 1\n"])
    assert [(r.sampler, r.schedule) for r in runner.requests] == [
        ("k_dpmpp_2m", "karras"), ("k_lms", "model"), ("k_dpmpp_2m", "karras")]
    assert ">> sampler -A k_lms by default again (the model sets no sampler of its own)" in (
        out.getvalue())


class FakeEmbeddings:
    names = ("shiny-style", "grainy")

    def describe(self) -> list[str]:
        return ["  <shiny-style> (shiny-style.pt): 2 vectors, 64 wide"]


def test_embeddings_are_listed_and_completed_after_a_less_than(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path, interactive=False)
    assert session.run_lines(["!embeddings\n"]) == 0
    assert "no textual-inversion embeddings" in out.getvalue()
    session.embedding_source = FakeEmbeddings
    assert session.run_lines(["!embeddings\n"]) == 0
    assert "<shiny-style> (shiny-style.pt)" in out.getvalue()
    assert completions(session, "a cat in <sh") == ["<shiny-style>"]
    assert completions(session, "a cat in <") == ["<grainy>", "<shiny-style>"]
    assert "<grainy>" not in completions(session, "a cat -I <")  # a path value, not a prompt word
