"""Lines as they arrive: bytes that may not be UTF-8, control characters, a pasted prompt.

Piped stdin, ``--from_file`` and ``!replay`` files are read as bytes and decoded one line at a
time, so a line that is not UTF-8 is reported (line number and byte offset) and skipped while
the other lines still run.  Nothing read from a file is echoed raw: control characters are
shown escaped (``\\x1b``), so a stray ESC cannot drive the terminal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: The words that quit when typed alone, without '!' (the table's ``q`` command and its aliases).
QUIT_WORDS = ("q", "Q", "exit", "quit")

PROMPT = "invoke> "
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab stays; \n \r never reach here


@dataclass(frozen=True)
class SourceLine:
    """One line of a file or pipe: its text, or why it could not be decoded."""

    number: int  # from 1
    text: str | None  # None when ``problem`` says why
    problem: str | None = None


def shown(text: str) -> str:
    """``text`` with control characters escaped (ESC -> ``\\x1b``) and invisible formatting
    characters too (a right-to-left override U+202E -> ``\\u202e``; emoji joiners kept), safe
    to print."""
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    if text.isascii():
        return text
    return "".join(f"\\u{ord(char):04x}" if unicodedata.category(char) == "Cf"
                   and char not in "\u200c\u200d" else char for char in text)


def without_prompt(line: str) -> str:
    """A pasted ``invoke> a cat -s 5`` runs as ``a cat -s 5`` (leading spaces allowed)."""
    stripped = line.lstrip()
    if stripped.startswith(PROMPT):
        return stripped[len(PROMPT):]
    if stripped == PROMPT.rstrip():
        return ""
    return line


_BOM = b"\xef\xbb\xbf"


def decode_lines(chunks: Iterable[bytes]) -> Iterator[SourceLine]:
    """Decode byte lines (as a binary file or ``sys.stdin.buffer`` yields them) one by one.

    A line that is not UTF-8 becomes a SourceLine with ``problem`` naming the first bad byte
    and its offset, counted from the start of the input (0-based) and within the line.
    """
    offset = 0
    for number, raw in enumerate(chunks, start=1):
        if number == 1 and raw.startswith(_BOM):  # a UTF-8 byte-order mark (Windows editors)
            offset, raw = len(_BOM), raw[len(_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start]
            problem = (f"line {number}: not UTF-8 text (byte 0x{bad:02x} at byte offset "
                       f"{offset + exc.start} of the input, {exc.start} of the line); "
                       f"line skipped")
            yield SourceLine(number, None, problem)
        else:
            yield SourceLine(number, text.rstrip("\r\n"))
        offset += len(raw)


def text_lines(lines: Iterable[str]) -> Iterator[SourceLine]:
    """Already-decoded lines (the tests, and typed text), numbered from 1."""
    for number, line in enumerate(lines, start=1):
        yield SourceLine(number, line.rstrip("\r\n"))
