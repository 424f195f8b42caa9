"""A1111 emphasis -> compel syntax, BREAK and escapes (issue 9, section 2): torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dreamline.prompt_syntax import has_groups, split_breaks, to_compel, unescape


@pytest.mark.parametrize("text, expected", [
    # plain text is untouched
    ("a red fox in the snow", "a red fox in the snow"),
    ("", ""),
    # A1111 emphasis
    ("a (cat)", "a (cat)1.1"),
    ("a ((cat))", "a (cat)1.21"),  # one group, the weights multiplied
    ("a (cat:1.3) on a mat", "a (cat)1.3 on a mat"),
    ("a (fat cat: 0.5)", "a (fat cat)0.5"),
    ("((cat:1.2) dog:0.8)", "((cat)1.2 dog)0.8"),
    ("(a:b:1.5)", "(a:b)1.5"),
    # compel's own syntax stays as written
    ("a (cat)1.3", "a (cat)1.3"),
    ("a (fat cat)++ x", "a (fat cat)++ x"),
    ("(a cat)- dog", "(a cat)- dog"),
    ('("a cat", "a dog").blend(0.7, 0.3)', '("a cat", "a dog").blend(0.7, 0.3)'),
    ('("a cat", "a dog").and()', '("a cat", "a dog").and()'),
    ("cat+ dog--", "cat+ dog--"),
    # escapes and unmatched parentheses stay literal
    (r"a \(cat\) b", r"a \(cat\) b"),
    ("a (cat", r"a \(cat"),
    ("a cat) b", r"a cat\) b"),
    ("a () b", r"a \(\) b"),
])
def test_to_compel(text: str, expected: str) -> None:
    assert to_compel(text) == expected


@pytest.mark.parametrize("text, pieces", [
    ("a cat BREAK a dog", ["a cat", "a dog"]),
    ("a cat BREAK", ["a cat"]),
    ("BREAK", [""]),
    ("", [""]),
    ("a cat BREAK BREAK a dog", ["a cat", "a dog"]),
    ("BREAKFAST and break and Break", ["BREAKFAST and break and Break"]),
    ("a cat,BREAK,a dog", ["a cat,", ",a dog"]),
])
def test_split_breaks(text: str, pieces: list[str]) -> None:
    assert split_breaks(text) == pieces


def test_unescape_and_groups() -> None:
    assert unescape(r"a \(cat\) \+ \"x\"") == 'a (cat) + "x"'
    assert has_groups("a (cat) b") and not has_groups(r"a \(cat\) b")
    assert not has_groups("a (cat") and not has_groups("plain")


def test_the_translator_does_not_import_torch() -> None:
    code = ("import sys, dreamline.prompt_syntax, dreamline.prompts; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_embedding_names_complete_in_the_prompt() -> None:
    from dreamline.prompt_syntax import complete_embedding

    names = ["cat-toy", "duo-style", "cartoon"]
    assert complete_embedding("ca", names) == ["<cartoon>", "<cat-toy>"]
    assert complete_embedding("<du", names) == ["<duo-style>"]
    assert complete_embedding("<", names) == ["<cartoon>", "<cat-toy>", "<duo-style>"]
    assert complete_embedding("", names) == [] and complete_embedding("x", names) == []
