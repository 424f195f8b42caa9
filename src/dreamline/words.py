"""The ONE prompt-line tokenizer and the ONE quoter: how words are split and written back.

Every reader of an ``invoke>`` line uses ``tokenize`` (the parser, the REPL's completer with
``partial=True``, a ``!`` command's path argument through ``command_argument``), and every
writer uses ``quote`` / ``quote_path`` (the formatter, the completer), so what is written always
reads back as the same words.

The rules, shell-style but kind to prompts:

* "double quotes" group words anywhere in a word; inside them \\" and \\\\ are escapes and every
  other backslash is kept (so a prompt's \\: survives).
* 'single quotes' quote only when the ' begins a word and a closing ' ends a later word;
  nothing is escaped inside.  An apostrophe inside a word is text (there's, cat's, don't), and
  so is one that starts an English elision ('tis, 'em, '90s); any other ' that begins a word
  and is never closed (``'red apple -s 3``) is an unbalanced quote, refused like an open ".
* Outside quotes a backslash inside a word escapes whitespace, a quote or a backslash
  (``my\\ pics/x.png``); other backslashes are kept (Windows paths, \\: in prompts).  A lone
  backslash, one that starts a word and is followed by whitespace, is text: ``a cat \\ -s2``
  is the prompt "a cat \\" and two steps, never the prompt "a cat  -s2".

Torch-free and PIL-free, like the rest of the prompt language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dreamline.request import RequestError, control_character

_SAFE_WORD = re.compile(r"[A-Za-z0-9_./:@%+,=~][A-Za-z0-9_./:@%+,=~-]*")
_NEGATIVE_NUMBER = re.compile(r"-(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Token:
    """One word of a line: its text (quotes and escapes removed), whether any of it was quoted,
    whether it starts with an unquoted '-' (only such a word can be a switch), and its span
    ``line[start:end]`` as typed (quotes included)."""

    text: str
    quoted: bool
    dash: bool
    start: int = 0
    end: int = 0

    @property
    def is_switch(self) -> bool:
        """Starts with an unquoted '-' and is not a negative number (those are values)."""
        return self.dash and not _NEGATIVE_NUMBER.fullmatch(self.text)


def check_characters(line: str) -> str:
    """``line`` with tabs turned into spaces; raises RequestError naming the first control
    character (C0, DEL or C1), e.g. "U+001B (ESC) at column 7", since the line cannot be
    shown or re-typed as it is."""
    line = line.replace("\t", " ")
    found = control_character(line)
    if found is not None:
        raise RequestError(f"the line has a control or invisible formatting character, {found}; "
                           "expected printable text (remove it and type the line again)")
    return line


def _closing_apostrophe(line: str, start: int) -> int:
    """Index of the ' that closes a quote opened at ``start``: the next ' that ends a word
    (followed by whitespace or the end of the line); -1 when there is none."""
    for index in range(start + 1, len(line)):
        if line[index] == "'" and (index + 1 == len(line) or line[index + 1].isspace()):
            return index
    return -1


#: Words that begin with an apostrophe in English ('tis, '90s): text, not an open quote.
_ELISION = re.compile(r"'(?:tis|twas|twere|twill|twould|em|n|cause|cos|til|till|round|bout|"
                      r"neath|ere|allo|ello|sup|kay|nuff|s|d|ll|re|ve|m|t|\d)", re.IGNORECASE)


def _check_elision(line: str, index: int, partial: bool) -> None:
    """A ' that begins a word and is never closed: an elision ('tis, 'em, '90s) is text; any
    other is an unbalanced quote (``'red apple -s 3``), refused as an open " is.  A line still
    being typed (``partial``) is not refused."""
    if partial:
        return
    found = _ELISION.match(line, index)
    if found is not None and (found.end() == len(line) or not line[found.end()].isalpha()
                              or found.group(0)[-1].isdigit()):
        return
    raise RequestError(f"unbalanced ' quote in {line[index:]!r}; expected a closing ' at the "
                       "end of a word (or \"...\" around text that starts with an apostrophe)")


def _double_quoted(line: str, index: int, parts: list[str], partial: bool) -> int:
    """Read a "..." group opening at ``index``; return the index after its closing quote."""
    word_start, length = index, len(line)
    index += 1
    while True:
        if index >= length:
            if partial:
                return index
            raise RequestError(f"unbalanced \" quote in {line[word_start:]!r}; "
                               "expected a closing \"")
        char = line[index]
        if char == "\\" and index + 1 < length and line[index + 1] in '"\\':
            parts.append(line[index + 1])
            index += 2
        elif char == '"':
            return index + 1
        else:
            parts.append(char)
            index += 1


def tokenize(line: str, *, partial: bool = False) -> list[Token]:
    """Split ``line`` into words by the rules in this module's docstring.

    Raises RequestError for an unbalanced double quote, unless ``partial`` (a line still being
    typed, for completion): then the open quote simply runs to the end of the line.
    """
    tokens: list[Token] = []
    index, length = 0, len(line)
    while index < length:
        if line[index].isspace():
            index += 1
            continue
        word_start = index
        if line[index] == "\\" and (index + 1 == length or line[index + 1].isspace()):
            tokens.append(Token("\\", False, False, index, index + 1))
            index += 1
            continue
        parts: list[str] = []
        quoted = False
        dash = line[index] == "-"
        while index < length and not line[index].isspace():
            char = line[index]
            if char == '"':
                quoted = True
                index = _double_quoted(line, index, parts, partial)
            elif char == "'" and index == word_start:
                close = _closing_apostrophe(line, index)
                if close < 0:
                    _check_elision(line, index, partial)
                    parts.append(char)
                    index += 1
                else:
                    quoted = True
                    parts.append(line[index + 1:close])
                    index = close + 1
            elif char == "\\" and index + 1 < length and (
                    line[index + 1].isspace() or line[index + 1] in "\"'\\"):
                parts.append(line[index + 1])
                index += 2
            else:
                parts.append(char)
                index += 1
        tokens.append(Token("".join(parts), quoted, dash, word_start, index))
    return tokens


def split_for_completion(text: str) -> tuple[list[Token], Token]:
    """The words before the cursor and the word being typed (empty after a space).

    ``text`` is the line up to the cursor; an unbalanced quote is fine (the user is still
    typing).  The word being typed has its span, so a completion can replace ``text[start:]``.
    """
    tokens = tokenize(text, partial=True)
    if tokens and tokens[-1].end == len(text):
        return tokens[:-1], tokens[-1]
    return tokens, Token("", False, False, len(text), len(text))


def quote(text: str) -> str:
    """Double-quote ``text`` as one word: only '"' and '\\' need a backslash inside."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_path(path: str, *, closed: bool = True) -> str:
    """A path as one word: bare when that is unambiguous, double-quoted otherwise (spaces,
    quotes, backslashes, non-ASCII, a leading '-' that would look like a switch).

    ``closed=False`` leaves a needed quote open (a directory the completer will go on into);
    ``tokenize(..., partial=True)`` reads that back as the same path.
    """
    if _SAFE_WORD.fullmatch(path):
        return path
    quoted = quote(path)
    return quoted if closed else quoted[:-1]


def command_argument(arg: str) -> str:
    """The path argument of a ``!`` command (``!fetch``, ``!switch``, ``!replay``).

    One word, quoted or escaped as on a prompt line, is read by ``tokenize``; several unquoted
    words are taken as typed, so ``!fetch my file.png`` still names "my file.png".
    Raises RequestError for an unbalanced double quote.
    """
    tokens = tokenize(arg)
    if len(tokens) == 1:
        return tokens[0].text
    if any(token.quoted for token in tokens):
        raise RequestError(f"{arg!r} is several words; expected one path (quote it as a whole)")
    return arg.strip()
