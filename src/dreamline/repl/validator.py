"""Refuse a line that cannot run before it is submitted, and say why under the prompt.

A prompt line is parsed exactly as it would be run (parse_line against the session's current
defaults and recall), so what the validator accepts is what the runner gets, and -I / -M
must name files that exist.  '!' commands are only checked for existence: their arguments are
the command's business.  A pasted ``invoke> `` prefix is dropped as the session drops it.
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.validation import ValidationError, Validator

from dreamline.errors import DreamlineError
from dreamline.parse import is_comment
from dreamline.repl.commands import find_command, is_command_line, split_command
from dreamline.repl.lines import without_prompt


def is_skipped(line: str) -> bool:
    """Blank lines and '#' or '//' comments do nothing."""
    return not line.strip() or is_comment(line)


def check_line(line: str, parse: Callable[[str], object]) -> None:
    """Raise DreamlineError if ``line`` cannot run; ``parse`` is the session's check_line
    (parse_line, and -I / -M must name existing files)."""
    line = without_prompt(line)
    if is_skipped(line):
        return
    if is_command_line(line):
        bang, word, _ = split_command(line)
        if find_command(word, bang=bang) is None:
            raise DreamlineError(f"!{word}: no such command; try !help")
        return
    parse(line)


class LineValidator(Validator):
    """prompt_toolkit side of check_line: the error message, cursor at the end of the line."""

    def __init__(self, parse: Callable[[str], object]) -> None:
        self.parse = parse

    def validate(self, document: Document) -> None:
        try:
            check_line(document.text, self.parse)
        except DreamlineError as exc:
            raise ValidationError(message=str(exc), cursor_position=len(document.text)) from exc
