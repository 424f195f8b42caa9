"""REPL surprises (issue 14): quitting words, pasted prompts, Enter in the completion menu,
missing -I/-M files, !fetch of another model's image, --save_intermediates' folder, the
progress bar, and 80-column toolbar and banner."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dreamline.cli import BANNER
from dreamline.errors import DreamlineError
from dreamline.models.manager import DEMO_NOTE
from dreamline.repl.progress import Progress
from dreamline.repl.prompt import make_prompt_session
from dreamline.repl.runner import Runner
from dreamline.repl.session import Session
from dreamline.repl.settings import Settings
from dreamline.repl.toolbar import toolbar_lines
from dreamline.repl.validator import check_line
from dreamline.request import Request
from test_repl import make_session, run_typed
from test_repl_runner import FakeGenerator

CTRL_D = "\x04"


@pytest.mark.parametrize("word", ["q", "exit", "quit", "  exit  "])
def test_exit_and_quit_quit_like_q(tmp_path: Path, word: str) -> None:
    session, runner, out, _ = make_session(tmp_path)
    assert run_typed(session, f"one\r{word}\rnever run\r" + CTRL_D) == 0
    assert [r.prompt for r in runner.requests] == ["one"]
    assert out.getvalue().rstrip().endswith("goodbye!")


def test_exit_with_more_words_is_a_prompt(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path, interactive=False)
    assert session.run_lines(["exit the cave -s 2\n"]) == 0
    assert [r.prompt for r in runner.requests] == ["exit the cave"]


def test_a_pasted_invoke_prompt_is_dropped(tmp_path: Path) -> None:
    session, runner, _, _ = make_session(tmp_path)
    run_typed(session, "invoke> a red fox -s 3\rinvoke> !history\r" + CTRL_D)
    assert [(r.prompt, r.steps) for r in runner.requests] == [("a red fox", 3)]
    check_line("invoke> a cat -s 2", session.check_line)
    piped, piped_runner, _, _ = make_session(tmp_path / "p", interactive=False)
    assert piped.run_lines(["invoke> a dog -s 2\n", "  invoke> q\n", "not run\n"]) == 0
    assert [r.prompt for r in piped_runner.requests] == ["a dog"]


async def _type_with_menu(session: Session, tabs: int) -> tuple[str, str, str]:
    """Type 'a cat -A k_', press Tab ``tabs`` times (waiting for the menu), then Enter and
    ' -s 2' Enter: (text after the Tabs, text after Enter, the line the prompt returned)."""
    with create_pipe_input() as pipe:
        prompt = make_prompt_session(session, input=pipe, output=DummyOutput())
        buffer = prompt.default_buffer
        task = asyncio.ensure_future(prompt.prompt_async("invoke> "))

        async def until(done: Callable[[], bool]) -> None:
            for _ in range(300):  # completion runs in the background: wait for it
                if done():
                    return
                await asyncio.sleep(0.01)

        pipe.send_text("a cat -A k_")
        await until(lambda: buffer.text == "a cat -A k_")
        for press in range(tabs):
            pipe.send_text("\t")
            if press == 0:
                await until(lambda: buffer.complete_state is not None
                            and len(buffer.complete_state.completions) > 1)
            else:
                await until(lambda: buffer.complete_state is not None
                            and buffer.complete_state.current_completion is not None)
        after_tabs = buffer.text
        pipe.send_text("\r")
        await until(lambda: buffer.complete_state is None or task.done())
        after_enter = buffer.text
        pipe.send_text(" -s 2\r")
        return after_tabs, after_enter, await asyncio.wait_for(task, 5)


def test_enter_in_the_completion_menu_takes_the_completion(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    # Tab opens the menu, Tab highlights the first sampler; Enter must only take it
    after_tabs, after_enter, line = asyncio.run(_type_with_menu(session, tabs=2))
    assert after_tabs.startswith("a cat -A k_") and after_tabs != "a cat -A k_"
    assert after_enter == after_tabs
    assert line == f"{after_tabs} -s 2"


def test_enter_with_the_menu_open_and_nothing_highlighted_takes_the_first(
        tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    after_tabs, after_enter, line = asyncio.run(_type_with_menu(session, tabs=1))
    assert after_tabs == "a cat -A k_"
    assert after_enter.startswith("a cat -A k_") and after_enter != after_tabs
    assert line == f"{after_enter} -s 2"


@pytest.mark.parametrize("switch", ["-I", "-M"])
def test_validator_refuses_a_missing_init_image_or_mask(tmp_path: Path, switch: str) -> None:
    session, runner, _, _ = make_session(tmp_path)
    image = tmp_path / "there.png"
    Image.new("RGB", (8, 8)).save(image)
    extra = f"-I {image} " if switch == "-M" else ""
    with pytest.raises(DreamlineError, match="missing.png': no such file"):
        check_line(f"a cat {extra}{switch} missing.png", session.check_line)
    check_line(f"a cat {extra}{switch} {image}", session.check_line)
    assert runner.requests == []


def _png_made_with(path: Path, model: str, digest: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Dream", '"a fox" -s 5 -S 1 -W 64 -H 64 -C 7.5 -A k_lms')
    info.add_text("sd-metadata", json.dumps({"model_id": model, "model_hash": digest}))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_fetch_says_when_the_image_was_made_with_another_model(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path, interactive=False)
    session.models.label = "tiny [0123456789]"  # type: ignore[misc]
    other = _png_made_with(tmp_path / "other.png", "big", "abcdef9876")
    same = _png_made_with(tmp_path / "same.png", "tiny", "0123456789")
    assert session.run_lines([f"!fetch {other}\n", f"!fetch {same}\n"]) == 0
    notes = [line for line in out.getvalue().splitlines() if "was made with" in line]
    assert notes == ["note: other.png was made with model big [abcdef9876], not tiny "
                     "[0123456789]; !switch to it to reproduce the image".join((">> ", ""))]


def test_save_intermediates_says_where(tmp_path: Path) -> None:
    said: list[str] = []
    runner = Runner(Settings(outdir=tmp_path), lambda: FakeGenerator(), say=said.append,
                    progress_stream=io.StringIO())
    runner.run(Request(prompt="a fox", steps=2, iterations=2, save_intermediates=1),
               lambda path, seed: None)
    folders = [f">> intermediate steps of image {n} saved in "
               f"{tmp_path / 'intermediates' / f'000001.{seed}'}" for n, seed in ((1, 10), (2, 11))]
    assert [line for line in said if line.startswith(">> intermediate")] == folders


def test_progress_bar_names_the_image_and_the_command_time_is_said(tmp_path: Path) -> None:
    stream = io.StringIO()
    said: list[str] = []
    runner = Runner(Settings(outdir=tmp_path), lambda: FakeGenerator(), say=said.append,
                    progress_stream=stream, progress=True)
    runner.run(Request(prompt="a fox", steps=3, iterations=2), lambda path, seed: None)
    drawn = stream.getvalue()
    assert "image 1/2" in drawn and "image 2/2" in drawn and "3/3 steps" in drawn
    assert said[-1].startswith(">> 2 image(s) in ")


def test_progress_bar_is_off_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, 1)
    progress.start_image()
    progress.step(1, 2)
    progress.close()
    assert stream.getvalue() == "" and progress.steps == 1


@pytest.mark.parametrize("model", ["demo [abc123def0]",
                                   "/home/someone/models/a/very/long/path/to/"
                                   "stable-diffusion-v1-5-pruned-emaonly.safetensors [0123456789]"])
def test_toolbar_fits_80_columns_and_keeps_the_key_hints(model: str) -> None:
    defaults = Request(steps=50, width=512, height=512, cfg_scale=7.5, sampler="k_dpmpp_2",
                       strength=0.75, grid=True)
    lines = toolbar_lines(model, "cuda:0 float16", defaults)
    texts = ["".join(text for _, text in line) for line in lines]
    assert all(len(text) <= 80 for text in texts), texts
    assert any("[Tab] complete" in text and "[Ctrl-D] quit" in text for text in texts)
    assert "-s 50 -W 512 -H 512" in texts[1]
    assert model[-30:] in texts[0]  # the file name and hash stay


def test_start_up_banner_and_demo_note_fit_80_columns() -> None:
    lines = [line.format(version="0.0.0.dev0") for line in BANNER] + list(DEMO_NOTE)
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]


def test_help_shows_the_models_own_guidance_default(tmp_path: Path) -> None:
    session, _, out, _ = make_session(tmp_path, interactive=False, cfg_scales={"tiny": 4.0})
    assert session.run_lines(["-h generation\n"]) == 0
    text = " ".join(out.getvalue().split())  # help wraps long lines
    assert "--cfg_scale SCALE" in text and "(model default 4)" in text and "7.5" not in text


def test_help_names_the_loaded_models_size_multiple() -> None:
    from dreamline.helptext import format_help

    known = " ".join(format_help("generation", size_multiple=16).split())
    assert "image width (model default when not given); floored to a multiple of 16" in known
    assert "image height (model default when not given); floored to a multiple of 16" in known
    unknown = " ".join(format_help("all").split())  # before a model loads: no number
    assert "floored to the model's multiple" in unknown and "multiple of 16" not in unknown


def test_help_topics_and_an_unknown_one(tmp_path: Path) -> None:
    session, runner, out, err = make_session(tmp_path, interactive=False)
    assert session.run_lines(["-h all\n"]) == 0
    assert "--seamless" in out.getvalue() and not runner.requests
    assert session.run_lines(["-h nonsense\n"]) != 0
    assert "not a help topic" in err.getvalue()


def test_a_switch_swallowed_by_an_escaped_space_is_said(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False)
    assert session.run_lines(["a cat\\ -s2\n"]) == 0
    assert runner.requests[0].prompt == "a cat -s2" and runner.requests[0].steps == 50
    assert "went into the prompt as text" in out.getvalue()


def test_a_much_larger_init_image_is_fitted_into_the_models_size(tmp_path: Path) -> None:
    from dreamline.repl.inputs import prepare_request

    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.new("RGB", (512, 384)).save(big)
    Image.new("RGB", (40, 40)).save(small)
    said: list[str] = []
    native = ("demo", 32, 32)
    fitted = prepare_request(Request(prompt="a tree", init_img=str(big)), tmp_path, said.append,
                             native)
    assert (fitted.fit, fitted.width, fitted.height) == (True, 32, 32)
    assert "512x384" in said[0] and "'demo' was made for 32x32" in said[0]
    for request in (Request(prompt="a", init_img=str(big), width=512),       # -W as large
                    Request(prompt="a", init_img=str(big), fit=True),         # --fit given
                    Request(prompt="a", init_img=str(small))):                # not much larger
        kept = prepare_request(request, tmp_path, said.append, native)
        assert (kept.fit, kept.width, kept.height) == (request.fit, request.width, request.height)
    unsized = prepare_request(Request(prompt="a", init_img=str(big)), tmp_path, said.append, None)
    assert unsized.fit is False and len(said) == 1


@pytest.mark.parametrize("native", [("demo", 32, 32), None])
def test_a_much_larger_init_image_is_fitted_into_the_lines_w_and_h(
        tmp_path: Path, native: tuple[str, int, int] | None) -> None:
    """-W 64 -H 32 with a 1536x1024 sketch and no --fit: the reference kept the sketch's size
    (hours on the demo model); the line's box is what the user asked for."""
    from dreamline.repl.inputs import prepare_request

    big = tmp_path / "big.png"
    Image.new("RGB", (1536, 1024)).save(big)
    said: list[str] = []
    fitted = prepare_request(Request(prompt="a", init_img=str(big), width=64, height=32),
                             tmp_path, said.append, native)
    assert (fitted.fit, fitted.width, fitted.height) == (True, 64, 32)
    assert said == [">> the init image is 1536x1024, much larger than -W 64 -H 32: fitting it "
                    "into 64x32 (--fit); give -W/-H of its own size to keep it"]


def test_the_session_asks_the_model_manager_for_the_native_size(tmp_path: Path) -> None:
    session, runner, out, _ = make_session(tmp_path, interactive=False)
    picture = tmp_path / "sketch.png"
    Image.new("RGB", (512, 512)).save(picture)
    session.models.native_size = lambda: ("tiny", 32, 32)  # type: ignore[method-assign]
    assert session.run_lines([f"a tree -I {picture}\n"]) == 0
    assert (runner.requests[0].fit, runner.requests[0].width) == (True, 32)
    assert "fitting it into 32x32" in out.getvalue()
    # -W/-H alone are not used with an init image (the reference's rule): the hint says --fit
    assert "for another size give --fit with -W/-H" in out.getvalue()
