"""The one tokenizer and the one quoter (words.py), and the text a Request may hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreamline.request import (CFG_SCALE_RANGE, Request, RequestError, control_character,
                               validate)
from dreamline.switches import BY_NAME
from dreamline.words import (Token, check_characters, command_argument, quote_path,
                             split_for_completion, tokenize)

_PRINTABLE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


def test_tokens_carry_their_span() -> None:
    line = 'a "b c" -I my\\ x.png'
    words = tokenize(line)
    assert [w.text for w in words] == ["a", "b c", "-I", "my x.png"]
    assert [line[w.start:w.end] for w in words] == ["a", '"b c"', "-I", "my\\ x.png"]


def test_lone_backslash_is_a_word_of_its_own() -> None:
    assert [(w.text, w.is_switch) for w in tokenize("cat \\ -s2")] == [
        ("cat", False), ("\\", False), ("-s2", True)]
    assert [w.text for w in tokenize("a\\ b")] == ["a b"]  # inside a word it still escapes


@given(_PRINTABLE)
def test_quote_path_reads_back_as_one_word(path: str) -> None:
    words = tokenize(quote_path(path))
    assert [(w.text, w.is_switch) for w in words] == [(path, False)]


@given(_PRINTABLE)
def test_open_quoted_path_reads_back_while_typing(path: str) -> None:
    """The completer leaves a directory's quote open; the partial reader gets the same path."""
    words, typing = split_for_completion("a -I " + quote_path(path, closed=False))
    assert [w.text for w in words] == ["a", "-I"]
    assert typing.text == path and typing.start == 5


def test_split_for_completion() -> None:
    words, typing = split_for_completion('a -I "my di')
    assert ([w.text for w in words], typing.text, typing.start) == (["a", "-I"], "my di", 5)
    words, typing = split_for_completion("a -I ")
    assert ([w.text for w in words], typing) == (["a", "-I"], Token("", False, False, 5, 5))
    assert split_for_completion("a -")[1].text == "-"
    with pytest.raises(RequestError, match="unbalanced"):
        tokenize('a -I "my di')


@pytest.mark.parametrize("arg, path", [
    ("x.png", "x.png"), ('"my file.png"', "my file.png"), ("'my file.png'", "my file.png"),
    ("my\\ file.png", "my file.png"), ("my file.png", "my file.png"),
    ("C:\\pics\\x.png", "C:\\pics\\x.png"), (' "a\\"b.png" ', 'a"b.png'),
])
def test_command_argument(arg: str, path: str) -> None:
    assert command_argument(arg) == path


def test_command_argument_refuses_several_quoted_words() -> None:
    with pytest.raises(RequestError, match="is several words; expected one path"):
        command_argument('"a.png" "b.png"')


@pytest.mark.parametrize("text, found", [
    ("abc", None), ("a\x1bb", "U+001B (ESC) at column 2"), ("\x00", "U+0000 (NUL) at column 1"),
    ("ab\x7f", "U+007F (DEL) at column 3"), ("\x85", "U+0085 (NEL) at column 1"),
    ("\x9f", "U+009F (APC) at column 1"), ("a\tb", "U+0009 (TAB) at column 2"),
    ("\u00a0\u2028\u732b", None),
])
def test_control_character(text: str, found: str | None) -> None:
    assert control_character(text) == found


def test_tabs_become_spaces() -> None:
    assert check_characters("a\tb") == "a b"
    with pytest.raises(RequestError, match=r"U\+001B \(ESC\) at column 2"):
        check_characters("a\x1b")


@pytest.mark.parametrize("changes, message", [
    ({"prompt": "a\x1bb"}, "prompt: 'a\\x1bb' has a control character, U+001B (ESC) at column 2"),
    ({"prompt": "a\tb"}, "U+0009 (TAB)"),
    ({"init_img": ""}, "-I/--init_img: an empty path"),
    ({"init_img": "x\n.png"}, "-I/--init_img: 'x\\n.png' has a control character, U+000A (LF)"),
    ({"init_img": "x.png", "init_mask": ""}, "-M/--init_mask: an empty path"),
    ({"outdir": ""}, "-o/--outdir: an empty path"),
    ({"outdir": 5}, "-o/--outdir: 5 is not text"),
])
def test_validate_refuses_text_no_line_can_hold(changes: dict, message: str) -> None:
    """What format_command could not write as a line is not a valid Request either."""
    with pytest.raises(RequestError) as info:
        validate(Request(**changes))
    assert message in str(info.value)


def test_one_cfg_range() -> None:
    low, high = CFG_SCALE_RANGE
    assert BY_NAME["-C"].expected == f"a value in [{low:g}, {high:g}]"
    validate(Request(cfg_scale=low))
    validate(Request(cfg_scale=high))
    with pytest.raises(RequestError, match=r"expected a value in \[0, 100\]"):
        validate(Request(cfg_scale=high + 0.5))


_LANGUAGE = ("parse", "format", "switches", "prompts", "request", "samplers", "words",
             "helptext")


def test_prompt_language_imports_no_torch_or_pil() -> None:
    """The layer rule: importing the prompt language loads neither torch nor PIL (checked in a
    fresh interpreter, since this test process may hold them for other tests)."""
    code = ("import sys\n"
            + "".join(f"import dreamline.{name}\n" for name in _LANGUAGE)
            + "print(sorted(m for m in ('torch', 'PIL', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("line, named", [
    ("fire \u202e -s 2", "U+202E (right-to-left override) at column 6"),
    ("\ufefffire -s 2", "U+FEFF (zero width no-break space) at column 1"),
    ("a\u200bb", "U+200B (zero width space) at column 2"),
])
def test_invisible_formatting_characters_are_refused(line: str, named: str) -> None:
    with pytest.raises(RequestError, match=re.escape(named)):
        check_characters(line)


def test_emoji_joiners_are_text() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 family"
    assert check_characters(family) == family


@pytest.mark.parametrize("line", ["'red apple -s 3", "a 'quoted", "'emerald city", "'"])
def test_an_unclosed_single_quote_is_refused_like_a_double_one(line: str) -> None:
    with pytest.raises(RequestError, match=r"^unbalanced ' quote in .*; expected a closing '"):
        tokenize(line)


@pytest.mark.parametrize("line, words", [
    ("don't panic", ["don't", "panic"]),
    ("'tis the season", ["'tis", "the", "season"]),
    ("'Twas night", ["'Twas", "night"]),
    ("'90s car", ["'90s", "car"]),
    ("rock 'n roll", ["rock", "'n", "roll"]),
    ("'em all", ["'em", "all"]),
    ("'a cat' -s 5", ["a cat", "-s", "5"]),
])
def test_apostrophes_in_words_and_elisions_stay_text(line: str, words: list[str]) -> None:
    assert [token.text for token in tokenize(line)] == words


def test_a_line_still_being_typed_may_have_an_open_single_quote() -> None:
    assert [token.text for token in tokenize("'red app", partial=True)] == ["'red", "app"]
