"""Keywords where case cannot matter are read in any case: -h ALL (it was refused while -h all
worked), a help topic, a '!' command's name, '!vocabulary ALL', --precision FLOAT32; a bare
'Exit' stays a prompt (only 'q', 'exit', 'quit' as written end the session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamline.cli import build_parser, settings_from_args
from dreamline.helptext import format_help
from dreamline.parse import parse_line
from dreamline.repl.commands import find_command, is_command_line
from dreamline.repl.vocabulary import read_vocabulary, vocabulary_lines
from dreamline.request import Request


@pytest.mark.parametrize("line, topic", [
    ("-h ALL", "all"), ("-h All", "all"), ("--help=IMG2IMG", "img2img"),
    ("a cat -h Variations", "variations"), ("-h all", "all"),
])
def test_help_topics_are_read_in_any_case(line: str, topic: str) -> None:
    parsed = parse_line(line, Request())
    assert parsed.wants_help and parsed.help_topic == topic
    assert format_help(parsed.help_topic) == format_help(topic)


def test_format_help_takes_a_topic_in_any_case() -> None:
    assert format_help("ALL") == format_help("all")
    assert format_help("Output") == format_help("output")


@pytest.mark.parametrize("word, name", [("HELP", "help"), ("Models", "models"),
                                        ("SWITCH", "switch"), ("Vocabulary", "vocabulary")])
def test_a_bang_command_is_found_in_any_case(word: str, name: str) -> None:
    command = find_command(word, bang=True)
    assert command is not None and command.name == name


def test_a_bare_word_quits_only_as_written() -> None:
    assert is_command_line("q") and is_command_line("Q") and is_command_line("exit")
    assert not is_command_line("Exit") and not is_command_line("QUIT")  # prompts


def test_help_or_a_question_mark_alone_lists_the_commands(tmp_path: Path) -> None:
    from test_repl import make_session

    session, runner, out, _ = make_session(tmp_path, interactive=False)
    assert session.run_lines(["help\n", "?\n", '"help"\n', "help me\n"]) == 0
    assert out.getvalue().count("Commands:") == 2
    assert [r.prompt for r in runner.requests] == ["help", "help me"]  # quoted, or with words


def test_vocabulary_all_in_any_case(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    text = "ball\n" + "".join(f"thing number {k}\n" for k in range(500))
    (folder / "vocabulary.txt").write_text(text, encoding="utf-8")
    found = read_vocabulary(folder)
    assert found is not None
    every = vocabulary_lines(found, "pics", "all", width=80)
    assert vocabulary_lines(found, "pics", "ALL", width=80) == every  # not "those with 'all'"


def test_launch_precision_in_any_case() -> None:
    assert settings_from_args(build_parser().parse_args(["--precision", "FLOAT32"])
                              ).precision == "float32"
