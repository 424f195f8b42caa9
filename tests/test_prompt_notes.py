"""Notes for prompt text that looks like weighting or negative syntax but is read as plain text."""

from __future__ import annotations

import pytest

from dreamline.parse import parse_line
from dreamline.prompt_notes import prompt_notes
from dreamline.request import Request


@pytest.mark.parametrize(("prompt", "words"), [
    ("a [cat", ["'['", "'a [cat'", "not part of a [words] negative prompt"]),
    ("a cat] dog", ["']'", "'a cat] dog'", "stays in the prompt as text"]),
    ("(x:abc) fox", ["'(x:abc)'", "'abc' is not a number", "(text:1.3)"]),
    ("(x)1e308 fox", ["'(x)1e308'", "weighs it 1 ", "'e308'"]),
    ("a (x)2.5E3", ["weighs it 2.5 ", "'E3'"]),
    ("(cat dog", ["'('", "'(cat dog'", "no ')'", "(words:1.3)"]),
    ("a cat) dog", ["')'", "no '('"]),
    ("(cat)999", ["'cat' is weighted 999", "outside -1 to 3"]),
    ("a (cat:-5)", ["'cat' is weighted -5"]),
])
def test_slips_get_one_note_naming_the_text(prompt: str, words: list[str]) -> None:
    (note,) = prompt_notes(prompt)
    assert note.startswith("note: ")
    assert "\n" not in note
    for word in words:
        assert word in note


@pytest.mark.parametrize("prompt", [
    "a cat [dog] [blurry, ugly]", "(16:9 photo)", "(http://example.org/x)", "(x:1.3) (y:-0.5)",
    "(x)1.5 (y)++ z--", '("a", "b").blend(0.7, 0.3)', "plain text", "",
    r"\(literal\) parentheses", "((((((((((cat))))))))))", "(cat:2.9) [(ugly)1.5]",
])
def test_meant_syntax_gets_no_note(prompt: str) -> None:
    assert prompt_notes(prompt) == ()


def test_the_parser_shows_the_note_and_still_makes_the_request() -> None:
    parsed = parse_line("a [cat -s 5", Request())
    assert parsed.request.prompt == "a [cat"
    assert parsed.request.steps == 5
    assert any("not part of a [words] negative" in note for note in parsed.notes)


def test_nested_brackets_are_quoted_as_typed() -> None:
    notes = prompt_notes("[[cat]] face")
    assert len(notes) == 2 and all("'[[cat]] face'" in note for note in notes)
    assert all("do not nest" in note for note in notes)


@pytest.mark.parametrize(("line", "note"), [
    ("a cat -f 0.5 --fit", "note: -f/--strength and -T/--fit change nothing without -I (an init "
                           "image); this line draws from pure noise"),
    ("a cat --invert_mask", "note: --invert_mask changes nothing without -I"),
])
def test_img2img_switches_without_an_init_image_are_noted(line: str, note: str) -> None:
    notes = parse_line(line, Request()).notes
    assert len(notes) == 1 and notes[0].startswith(note)
    assert parse_line(line + " -I x.png", Request()).notes == ()
