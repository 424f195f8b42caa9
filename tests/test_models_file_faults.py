"""A broken models file (configs/models.yaml or --config FILE): one line at start naming the
file and the place at fault, !models repeats it, and the session goes on with the built-in demo
model; keys said twice are refused, not silently overwritten as YAML would."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamline.cli import main
from dreamline.errors import ModelError
from dreamline.models.manager import ModelManager
from dreamline.models.registry import ModelRegistry
from dreamline.repl.runner import Runner
from dreamline.request import Request

GOOD_ENTRY = "demo:\n  path: \"@builtin/demo\"\n  width: 32\n  height: 32\n"


def load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError) as caught:
        ModelRegistry.load(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("text, where, expected", [
    ("demo:\n  path: @builtin/demo\n", "line 2, column 9", "expected quotes around a value"),
    ("demo:\n\tpath: x\n", "line 2, column 1", "expected spaces, not tabs"),
    ("demo:\n  path: x\n  description: a: b\n", "line 3, column 17",
     "expected quotes around a value that holds ': '"),
    ("demo:\n  path: x\n  description: [unclosed\n",
     "(while parsing a flow sequence from line 3, column 16)", "every bracket and quote closed"),
])
def test_invalid_yaml_names_line_column_and_what_was_expected(
        tmp_path: Path, text: str, where: str, expected: str) -> None:
    message = load_error(tmp_path, text)
    assert "is not valid YAML at line" in message and where in message and expected in message


@pytest.mark.parametrize("text, fragment", [
    (GOOD_ENTRY + "  cfg_scale: 101\n", "line 5: model 'demo': cfg_scale is 101; expected"),
    (GOOD_ENTRY + "  colour: red\n", "line 5: model 'demo' has unknown field(s) colour"),
    ("demo:\n  description: x\n  sampler: nope\n  path: x\n",
     "line 3: model 'demo': sampler is 'nope'; expected"),
    ("other:\n  path: x\ndemo:\n  description: x\n",
     "line 3: model 'demo' has no path; expected a path key"),
])
def test_a_bad_entry_names_the_line_of_its_key(tmp_path: Path, text: str,
                                               fragment: str) -> None:
    assert fragment in load_error(tmp_path, text)


def test_a_broken_models_file_stops_a_batch_before_any_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A --from_file or piped run meant for the user's models must not run on the demo model:
    one line and status 2, as a bad --model (at the prompt the demo model goes on)."""
    ran: list[Request] = []
    monkeypatch.setattr(Runner, "run", lambda self, request, on_saved: ran.append(request))
    broken = tmp_path / "models.yaml"
    broken.write_text("demo:\n  path: @builtin/demo\n", encoding="utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("!models\na fox -s 2 -S 1\n", encoding="utf-8")
    status = main(["-o", str(tmp_path / "out"), "-c", str(broken), "--from_file", str(lines)])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"dreamline: error: models file {broken} is not valid YAML at "
                             f"line 2, column 9")
    assert "demo model" not in err[0]
    assert ran == [] and status == 2


def test_models_lists_the_builtin_model_after_a_fallback(tmp_path: Path) -> None:
    models = ModelManager(models_file=tmp_path / "missing.yaml", device="cpu",
                          precision="auto", wanted=None, say=lambda _: None)
    with pytest.raises(ModelError, match="does not exist"):
        models.registry()
    models.use_builtin_models("models file gone; only the built-in demo model is available")
    assert models.names() == ["demo"] and models.problem is not None
    assert models.describe()[0] == "models in the built-in list:"
    assert models.default_cfg() == ("demo", 4.0, "its built-in entry")


@pytest.mark.parametrize("text, fragment", [
    (GOOD_ENTRY + "  sampler: k_euler\n  sampler: ddim\n",
     "model 'demo' has two sampler keys (lines 5 and 6; YAML would keep the last silently); "
     "expected one"),
    (GOOD_ENTRY + "other:\n  path: x\n" + GOOD_ENTRY,
     "model 'demo' is listed twice (lines 1 and 7); expected each name once"),
])
def test_a_key_said_twice_is_refused_naming_entry_key_and_lines(tmp_path: Path, text: str,
                                                                 fragment: str) -> None:
    message = load_error(tmp_path, text)
    assert message == f"models file {tmp_path / 'models.yaml'}: {fragment}"


def test_at_the_prompt_a_broken_models_file_leaves_the_demo_model_and_models_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from dreamline import cli
    from dreamline.repl.session import Session

    broken = tmp_path / "models.yaml"
    broken.write_text(GOOD_ENTRY + "  sampler: k_euler\n  sampler: ddim\n", encoding="utf-8")
    seen: list[object] = []

    def prompt(session: Session, prompt_session: object) -> int:
        seen.append(session.models.label)
        seen.append(session.handle_line("!models").error)
        return 0

    monkeypatch.setattr(cli, "make_prompt_session", lambda session: None)
    monkeypatch.setattr(Session, "run_interactive", prompt)
    monkeypatch.setattr("sys.stdin", type("Tty", (), {"isatty": lambda self: True})())
    assert main(["-o", str(tmp_path / "out"), "-c", str(broken)]) == 0
    label, error = seen
    assert str(label).startswith("demo [") and error is None  # loaded; !models did not fail
    err = capsys.readouterr().err.splitlines()
    line = (f"error: models file {broken}: model 'demo' has two sampler keys (lines 5 and 6; "
            f"YAML would keep the last silently); expected one; only the built-in demo model "
            f"is available")
    assert err == [f"dreamline: {line}", line]  # at start, then from !models
