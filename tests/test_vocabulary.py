"""`!vocabulary [word]` and prompt-word completion from a model's vocabulary file (no torch)."""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.output import DummyOutput
from test_repl import make_session

from dreamline.repl.commands import find_command, help_lines
from dreamline.repl.completer import InvokeCompleter, SwitchSpec
from dreamline.repl.context import Flow
from dreamline.repl.prompt import make_prompt_session
from dreamline.repl.vocabulary import (SCREEN_LINES, read_vocabulary, vocabulary_file,
                                       vocabulary_lines, vocabulary_words)

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "src" / "dreamline" / "data" / "demo"
FILE_TEXT = """# The pictures this model knows.
fox face | fox
deciduous tree | tree
evergreen tree
red apple | apple
"""


class Model:
    """A loaded model as the vocabulary code sees it: a path."""

    def __init__(self, path: Path) -> None:
        self.path = path


class Models:
    """A ModelManager stand-in whose current model lives at ``path``."""

    def __init__(self, path: Path) -> None:
        self.model = Model(path)
        self.label = "pics [0123456789]"

    def current(self) -> Model:
        return self.model


class Context:
    """The part of CommandContext the handler uses."""

    def __init__(self, path: Path) -> None:
        self.models = Models(path)
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text)


def model_folder(tmp_path: Path, text: str | None = FILE_TEXT) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    if text is not None:
        (folder / "vocabulary.txt").write_text(text, encoding="utf-8")
    return folder


def run_vocabulary(context: Context, arg: str) -> list[str]:
    command = find_command("vocabulary", bang=True)
    assert command is not None
    assert command.handler(context, "vocabulary", arg) is Flow.GO_ON  # type: ignore[arg-type]
    return context.lines


def test_lists_the_entries_with_their_other_words(tmp_path: Path) -> None:
    lines = run_vocabulary(Context(model_folder(tmp_path)), "")
    assert lines[0] == ">> pics knows 4 pictures (7 captions, from vocabulary.txt)"
    assert lines[1] == ">> The pictures this model knows."
    assert lines[2] == "fox face (fox); deciduous tree (tree); evergreen tree; red apple (apple)"


def test_a_filter_keeps_the_matching_entries(tmp_path: Path) -> None:
    lines = run_vocabulary(Context(model_folder(tmp_path)), "TREE")
    assert lines == [">> 2 of pics's 4 pictures match 'TREE':",
                     "deciduous tree (tree); evergreen tree"]


def test_a_filter_that_matches_nothing_says_so(tmp_path: Path) -> None:
    (line,) = run_vocabulary(Context(model_folder(tmp_path)), "zebra")
    assert "no entry" in line and "'zebra'" in line


def test_a_model_without_a_file_says_any_words_work(tmp_path: Path) -> None:
    lines = run_vocabulary(Context(model_folder(tmp_path, None)), "")
    assert lines == [">> pics [0123456789] has no vocabulary list (any words work)"]


def test_a_single_file_model_has_its_list_beside_it(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    assert vocabulary_file(weights) == tmp_path / "model.vocabulary.txt"


def test_a_long_list_fits_a_screen_and_says_how_to_see_the_rest(tmp_path: Path) -> None:
    text = "".join(f"thing number {k}\n" for k in range(500))
    found = read_vocabulary(model_folder(tmp_path, text))
    assert found is not None
    lines = vocabulary_lines(found, "pics", "", width=80)
    assert len(lines) == 1 + SCREEN_LINES + 1
    assert all(len(line) <= 80 for line in lines[1:-1])
    shown = sum(line.count(";") + 1 for line in lines[1:-1])
    assert lines[-1].startswith(f">> ... and {500 - shown} more:")
    assert len(vocabulary_lines(found, "pics", "all", width=80)) > SCREEN_LINES + 2


def test_the_command_is_in_help() -> None:
    assert any(line.lstrip().startswith("!vocabulary [word]") for line in help_lines())


def completer(words: list[str]) -> InvokeCompleter:
    switches = [SwitchSpec(("-s", "--steps"), "value"), SwitchSpec(("-A", "--sampler"), "sampler"),
                SwitchSpec(("--fit",), "none")]
    return InvokeCompleter(switches, samplers=("k_lms", "ddim"), vocabulary=lambda: words)


def complete(found: InvokeCompleter, text: str) -> list[tuple[str, int]]:
    return [(c.text, c.start_position)
            for c in found.get_completions(Document(text, len(text)), CompleteEvent(True))]


WORDS = ["fox face", "fox", "deciduous tree", "tree", "evergreen tree", "red apple", "apple"]


def test_prompt_words_complete_from_the_vocabulary() -> None:
    found = completer(WORDS)
    assert complete(found, "fo") == [("fox", -2), ("fox face", -2)]
    assert complete(found, "a deciduous tr") == [("deciduous tree", -12)]
    assert complete(found, '"a red ap') == [("red apple", -6)]
    assert complete(found, "tree -s 20 --fit ev") == [("evergreen tree", -2)]


def test_vocabulary_does_not_get_in_the_way_of_switches() -> None:
    found = completer(WORDS)
    assert [text for text, _ in complete(found, "fox --st")] == ["--steps "]
    assert complete(found, "fox -A k_") == [("k_lms", -2)]
    assert complete(found, "fox ") == []
    assert complete(completer([]), "fo") == []


def test_the_session_offers_the_current_models_words(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)
    session.models = Models(model_folder(tmp_path))  # type: ignore[assignment]
    prompt = make_prompt_session(session, output=DummyOutput())
    assert prompt.completer is not None
    text = "a fo"
    offered = prompt.completer.get_completions(Document(text, len(text)), CompleteEvent(True))
    assert [c.text for c in offered] == ["fox", "fox face"]


def test_a_model_without_a_path_offers_nothing(tmp_path: Path) -> None:
    session, _, _, _ = make_session(tmp_path)  # its fake model is a name, not a LoadedModel
    assert vocabulary_words(session.models) == []


def test_the_demo_models_vocabulary_is_what_it_was_trained_on() -> None:
    """The shipped list names the emoji of the demo model's training set (all 1,271), nothing
    else, each with the other words it was trained on ("fox" for "fox face")."""
    import numpy as np

    found = read_vocabulary(DEMO_DIR)
    assert found is not None
    with np.load(DEMO_DIR / "reference.npz") as ref:
        trained = [str(name) for name in ref["names"]]
    assert [entry.caption for entry in found.entries] == trained
    assert len(trained) == 1271
    assert "deciduous tree" in found.captions and "fox" in found.captions
    fox = next(entry for entry in found.entries if entry.caption == "fox face")
    assert fox.aliases == ("fox",)
    assert any("background" in note for note in found.notes)
