"""Launch options: parsing, per-line defaults from the switch table, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamline.cli import build_parser, main, settings_from_args
from dreamline.repl.runner import Runner
from dreamline.repl.settings import DEFAULT_OUTDIR
from dreamline.request import Request

REPO = Path(__file__).resolve().parents[1]


def settings(*argv: str):  # type: ignore[no-untyped-def]
    return settings_from_args(build_parser().parse_args(list(argv)))


def test_defaults() -> None:
    got = settings()
    assert got.outdir == DEFAULT_OUTDIR
    assert got.precision == "auto" and got.model is None and got.config is None
    assert got.defaults.steps == 50 and got.defaults.sampler == "k_lms"
    assert got.error_log_path == DEFAULT_OUTDIR / "dreamline-errors.log"
    assert got.history_path == DEFAULT_OUTDIR / ".invoke_history"


def test_per_line_defaults_short_and_long() -> None:
    got = settings("-s", "20", "-W", "640", "--height=384", "-C", "0", "-f", "0.4", "-A",
                   "k_euler", "-g")
    d = got.defaults
    assert (d.steps, d.width, d.height, d.cfg_scale, d.strength, d.sampler, d.grid) == \
        (20, 640, 384, 0.0, 0.4, "k_euler", True)


def test_launch_given_remembers_which_defaults_were_typed() -> None:
    assert settings().launch_given == frozenset()
    assert not settings().launch_cfg_scale
    got = settings("-C", "7.5", "-s", "20")
    assert got.launch_given == {"cfg_scale", "steps"} and got.launch_cfg_scale
    assert got.defaults.cfg_scale == settings().defaults.cfg_scale == 7.5  # same value, given


@pytest.mark.parametrize("launch, expected, said", [
    ((), 4.0, True),                     # the demo entry's cfg_scale, before any model load
    (("-C", "7.5"), 7.5, False),         # a launch -C beats it
])
def test_start_up_uses_the_models_cfg_scale_before_loading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        launch: tuple[str, ...], expected: float, said: bool) -> None:
    ran: list[Request] = []
    monkeypatch.setattr(Runner, "run", lambda self, request, on_saved: ran.append(request))
    lines = tmp_path / "lines.txt"
    lines.write_text("a fox -s 2 -S 1\n")
    argv = ["-o", str(tmp_path), "-c", str(REPO / "configs" / "models.yaml"),
            "--from_file", str(lines), *launch]
    assert main(argv) == 0
    assert [request.cfg_scale for request in ran] == [expected]
    out = capsys.readouterr().out.splitlines()
    message = ">> guidance scale -C 4.0 by default for model 'demo' (its models.yaml entry)"
    assert (message in out) is said
    if said:
        assert out.index(message) < out.index("#a fox -s 2 -S 1")


def test_launch_options() -> None:
    got = settings("-o", "elsewhere", "-F", "-p", "--device", "cpu", "--model", "tiny",
                   "-c", "m.yaml", "--log_file", "err.log")
    assert got.outdir == Path("elsewhere") and got.precision == "float32"
    assert got.prompt_as_dir and got.device == "cpu" and got.model == "tiny"
    assert got.config == Path("m.yaml") and got.error_log_path == Path("err.log")
    assert settings("--precision", "autocast").precision == "auto"


@pytest.mark.parametrize("argv, message", [
    (["-s", "0"], "-s/--steps: 0 is out of range"),
    (["-f", "x"], "-f/--strength: 'x' is not a number"),
])
def test_bad_default_is_one_line_and_status_2(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--threads", "\u0663"], "argument --threads: '\u0663' is not a whole number"),  # Arabic 3
    (["--threads", "2.5"], "argument --threads: '2.5' is not a whole number"),
    (["--ray_workers", "\uff12"], "argument --ray_workers: '\uff12' is not a whole number"),
    (["--ray_cpus", "nan"], "argument --ray_cpus: 'nan' is not a number"),
])
def test_launch_numbers_are_ascii_like_the_switches(argv: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A new user's finding: --threads took an Arabic-Indic digit the switches refuse."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().splitlines()[-1].startswith("dreamline: error:")


@pytest.mark.parametrize("cpus", ["1e-30", "0", "-1"])
def test_ray_cpus_below_a_hundredth_of_a_core_is_one_line(
        cpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    lines = tmp_path / "lines.txt"
    lines.write_text("a fox\n")
    assert main(["--from_file", str(lines), "--ray", "--ray_cpus", cpus]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dreamline: error: --ray_cpus: {float(cpus):g} is too small; expected CPU "
                   "cores per worker, 0.01 or more (e.g. 0.5, 2)"]


def test_help_lists_launch_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for option in ("--outdir", "--from_file", "--model", "--config", "--precision",
                   "--full_precision", "--grid", "--prompt_as_dir", "--device", "--steps",
                   "--cfg_scale", "--strength", "--sampler", "--log_file"):
        assert option in text


def test_missing_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path), "--from_file", str(tmp_path / "none.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_from_file_of_a_picture_is_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A new user's finding: --from_file on a PNG printed 97 lines of per-'line' errors."""
    from PIL import Image

    picture = tmp_path / "made.png"
    Image.new("RGB", (16, 16)).save(picture)
    assert main(["-o", str(tmp_path / "out"), "--from_file", str(picture)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --from_file: {picture} is not a text file; expected prompt lines, one a line "
        "(!fetch reads the command stored in a picture)"]


def test_an_empty_from_file_says_nothing_ran(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for content in (b"", b"\n# only a comment\n   \n"):
        empty = tmp_path / "empty.txt"
        empty.write_bytes(content)
        assert main(["-o", str(tmp_path / "out"), "--from_file", str(empty)]) == 0
        assert f">> {empty}: no prompt lines in it (only blank lines or # comments, or " \
               "nothing), so nothing was run" in capsys.readouterr().out


def test_a_utf16_from_file_names_its_encoding(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "wide.txt"
    wide.write_text("a fox -s 5\n", encoding="utf-16")
    assert main(["-o", str(tmp_path / "out"), "--from_file", str(wide)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --from_file: {wide} is UTF-16 text; expected UTF-8 (save it as UTF-8)"]


def test_from_file_dash_is_called_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a fox -s 0\n")))
    assert main(["-o", str(tmp_path / "out"), "--from_file", "-"]) == 1
    assert "1 line(s) of standard input failed:" in capsys.readouterr().err
