"""Read one prompt line ('a cat -s 20 -S 42 -I x.png') into a validated Request.

The grammar is the reference's (dream-cli.md section 1): shell-style words, the prompt first,
then argparse-style switches.  Two things differ on purpose: the tokenizer is our own
(words.py), so an apostrophe in "there's a fly" or `a cat's toy -s5` is text rather than an
unbalanced quote, and a quoted word is never taken for a switch, so `"a cat -- sleeping" -s20`
works.  A line with a control character is refused (tabs count as spaces).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dreamline.errors import DreamlineError
from dreamline.launch_options import launch_only
from dreamline.compel_methods import check_methods
from dreamline.prompt_notes import prompt_notes
from dreamline.prompts import split_prompt
from dreamline.request import Request, RequestError, validate
from dreamline.switches import BY_FIELD, BY_NAME, LONG_NAMES, Kind, Switch, Unsupported
from dreamline.words import Token, check_characters, tokenize

__all__ = ["ParsedLine", "Recall", "Token", "is_comment", "parse_line", "tokenize"]

_RECALL = re.compile(r"-\d+")
_ESCAPED_DASH = re.compile(r"\\\s(-\S+)")
_QUOTE_HINT = "quote the prompt if it has words that start with '-'"
COLUMNS = 80  # an error said under the prompt is one line of an 80-column terminal


class Recall(Protocol):
    """What the previous command produced; the REPL supplies it for -S -N and -I -N."""

    def seed(self, back: int) -> int: ...

    def image(self, back: int) -> str: ...


@dataclass(frozen=True)
class ParsedLine:
    """A parsed line: the request, which Request fields the line itself set, and whether it
    asked for help (-h), in which case ``request`` is just the defaults and ``help_topic`` is
    the topic typed after -h ("" for the short screen, "all", or a group's topic word)."""

    request: Request
    given: frozenset[str]
    wants_help: bool = False
    help_topic: str = ""
    notes: tuple[str, ...] = ()  # one line each, for the REPL to show before running


def is_comment(line: str) -> bool:
    """A line the REPL skips: '# ...' or '// ...' (blank lines are skipped as well)."""
    stripped = line.strip()
    return stripped.startswith("#") or stripped.startswith("//")


def _fitted(head: str, tails: list[str]) -> str:
    """``head`` (the bad value, first) with the longest of ``tails`` that keeps the line within
    COLUMNS (the prompt's one-line error bar cuts the rest), else with the shortest tail."""
    for tail in sorted(tails, key=len, reverse=True):
        if len(head) + len(tail) <= COLUMNS:
            return head + tail
    return head + min(tails, key=len)


def _unknown(name: str) -> RequestError:
    """An unknown switch word: a launch option typed on a line is named as one."""
    word = name.partition("=")[0]
    option = launch_only(word)
    if option is not None:
        head = f"{word} is a launch option, given when dreamline starts"
        if option.at_prompt:
            return RequestError(_fitted(head, [f"; here use {option.at_prompt}",
                                               f"; use {option.at_prompt}"]))
        return RequestError(_fitted(head, [f" (dreamline {word} ...)", ""]))
    head = f"unknown switch {name!r}"
    close = difflib.get_close_matches(name, list(BY_NAME), n=3, cutoff=0.6)
    if close:
        return RequestError(_fitted(head, [f"; did you mean {' or '.join(close[:count])}?"
                                           for count in range(1, len(close) + 1)]))
    return RequestError(_fitted(head, [f"; -h lists the switches ({_QUOTE_HINT})",
                                       "; -h lists the switches, or quote the prompt",
                                       "; -h lists the switches"]))


def _by_long_prefix(name: str) -> Switch | Unsupported:
    """Resolve an abbreviated long name ('--str'), as argparse does: the prefix must be unique."""
    candidates = [long for long in LONG_NAMES if long.startswith(name)]
    if len(candidates) == 1:
        return BY_NAME[candidates[0]]
    if candidates:
        raise RequestError(f"{name} is ambiguous; could be {', '.join(sorted(candidates))}")
    raise _unknown(name)


def _resolve_name(name: str) -> Switch | Unsupported:
    entry = BY_NAME.get(name)
    if entry is not None:
        return entry
    if name.startswith("--") and len(name) > 2:
        return _by_long_prefix(name)
    raise _unknown(name)


def _supported(entry: Switch | Unsupported) -> Switch:
    if isinstance(entry, Unsupported):
        raise RequestError(entry.message)
    return entry


def _resolve(text: str) -> list[tuple[Switch, str | None]]:
    """The switch(es) a switch word names, each with its joined value (None when not joined).

    Forms: exact names (-s, --steps, -fit), --name=value (also -s=5), unique long prefixes
    (--str), joined short values (-s50, -S-1) and clusters of short flags (-gx).
    """
    entry = BY_NAME.get(text)
    if entry is not None:
        return [(_supported(entry), None)]
    if text.startswith("--"):
        name, equals, value = text.partition("=")
        if name == "--":
            raise RequestError(f"'--' is not a switch; {_QUOTE_HINT}")
        return [(_supported(_resolve_name(name)), value if equals else None)]
    name, equals, value = text.partition("=")
    if equals and name in BY_NAME:
        return [(_supported(BY_NAME[name]), value)]
    short = BY_NAME.get(text[:2])
    if short is None or len(text) < 3:
        raise _unknown(text)
    switch = _supported(short)
    if switch.kind.takes_value:
        return [(switch, text[2:])]
    cluster = [BY_NAME.get("-" + letter) for letter in text[1:]]
    if all(isinstance(s, Switch) and not s.kind.takes_value for s in cluster):
        return [(s, None) for s in cluster if isinstance(s, Switch)]
    raise RequestError(f"{switch.label} takes no value, but got {text!r}")


def _recalled(switch: Switch, back: int, recall: Recall | None) -> Any:
    """-S -N / -I -N: ask the REPL for the N-th-from-last image of the previous command."""
    what = "seed" if switch.field == "seed" else "image"
    if back < 1:
        raise RequestError(f"{switch.label}: -{back} cannot name an earlier image; expected -1 "
                           "for the last image of the previous command, -2 for the one before...")
    if recall is None:
        raise RequestError(f"{switch.label}: -{back} reuses the {what} of an image of the previous "
                           "command, but there is no previous command")
    try:
        return recall.seed(back) if what == "seed" else recall.image(back)
    except (DreamlineError, LookupError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise RequestError(f"{switch.label}: -{back} has no {what} to reuse: {reason}") from exc


def _value(switch: Switch, raw: str, quoted: bool, recall: Recall | None) -> Any:
    if switch.recall and not quoted and _RECALL.fullmatch(raw):
        return _recalled(switch, int(raw[1:]), recall)
    return switch.convert(raw)


def _help(switch: Switch, joined: str | None, tokens: list[Token], index: int,
          defaults: Request) -> ParsedLine:
    """-h, -h all, -h <group>, --help=<topic>: the topic is the next word when it is not a
    switch; anything after it is ignored, as -h has always ignored the rest of the line."""
    topic = joined
    if topic is None and index < len(tokens) and not tokens[index].is_switch:
        topic = tokens[index].text
    return ParsedLine(defaults, frozenset(), wants_help=True,
                      help_topic=switch.convert(topic) if topic is not None else "")


def _looks_like_switch(text: str) -> bool:
    try:
        _resolve(text)
    except RequestError:
        return False
    return True


def _escaped_switch_notes(line: str, prompt_tokens: list[Token]) -> tuple[str, ...]:
    """A backslash-escaped space before a switch ('a cat\\ -s2') joins the switch to the prompt,
    as in a shell: say so, since it is more often a slip than meant."""
    notes: list[str] = []
    for token in prompt_tokens:
        if token.quoted:  # inside quotes a backslash is kept as it is
            continue
        for found in _ESCAPED_DASH.finditer(line[token.start:token.end]):
            if _looks_like_switch(found.group(1)):
                notes.append(f"note: '{found.group(0)}' went into the prompt as text (the "
                             f"backslash escapes the space); drop the backslash to use "
                             f"{found.group(1)} as a switch")
    return tuple(notes)


#: Switches that only change an img2img line (-M without -I is an error of its own).
_IMG2IMG_ONLY = ("strength", "fit", "invert_mask")


def _img2img_only_notes(given: set[str], request: Request) -> tuple[str, ...]:
    """A line that gives -f, --fit or --invert_mask without an init image: they do nothing
    there (the command keeps them, as given), which is more often a slip than meant."""
    unused = [BY_FIELD[name].label for name in _IMG2IMG_ONLY if name in given]
    if not unused or request.init_img is not None:
        return ()
    verb = "changes" if len(unused) == 1 else "change"
    return (f"note: {' and '.join(unused)} {verb} nothing without -I (an init image); this "
            f"line draws from pure noise",)


def _with_negative(prompt: str, negatives: list[str]) -> str:
    """--negative_prompt TEXT is written into the prompt as [TEXT], so that the Request and its
    formatted command keep one form of the negative prompt."""
    extra = " ".join(f"[{text}]" for text in negatives if text.strip())
    if not extra:
        return prompt
    return f"{prompt} {extra}" if prompt else extra


def parse_line(line: str, defaults: Request, recall: Recall | None = None) -> ParsedLine:
    """Parse one prompt line, overlaying its switches on ``defaults`` for this line only.

    Every bad input (a control character, unknown or unsupported switch, missing or malformed
    value, out-of-range value, unbalanced quote, bad sub-prompt weights) raises a one-line
    RequestError.
    """
    line = check_characters(line)
    tokens = tokenize(line)
    index = 0
    prompt_words: list[str] = []
    while index < len(tokens) and not tokens[index].is_switch:
        prompt_words.append(tokens[index].text)
        index += 1
    values: dict[str, Any] = {}
    negatives: list[str] = []
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.is_switch:
            raise RequestError(f"{token.text!r} is not a switch and comes after the switches; the "
                               f"prompt goes first ({_QUOTE_HINT})")
        for switch, joined in _resolve(token.text):
            if switch.kind is Kind.HELP:
                return _help(switch, joined, tokens, index, defaults)
            if not switch.kind.takes_value:
                if joined is not None:
                    raise RequestError(f"{switch.label} takes no value, but got {joined!r}")
                values[str(switch.field)] = True
                continue
            if joined is not None:
                raw, quoted = joined, token.quoted
            elif index < len(tokens) and not tokens[index].is_switch:
                raw, quoted = tokens[index].text, tokens[index].quoted
                index += 1
            else:
                raise RequestError(f"{switch.label}: missing its value; expected {switch.expected}")
            if switch.kind is Kind.NEGATIVE:
                negatives.append(switch.convert(raw))
            elif switch.kind is Kind.LORAS:  # --lora a:1 --lora b:2 gives both
                values["loras"] = values.get("loras", ()) + switch.convert(raw)
            else:
                values[str(switch.field)] = _value(switch, raw, quoted, recall)
                values.update(switch.implied(raw))  # -A "DPM++ 2M Karras": the schedule too
    given = set(values)
    prompt = _with_negative(" ".join(prompt_words), negatives)
    if prompt_words or prompt:
        given.add("prompt")
    request = validate(replace(defaults, prompt=prompt, **values))
    parts = split_prompt(request.prompt, normalize=not request.skip_normalize)
    for text in [text for text, _ in parts.positive] + [parts.negative]:
        check_methods(text)
    notes = _escaped_switch_notes(line, tokens[:len(prompt_words)]) + prompt_notes(request.prompt)
    notes += _img2img_only_notes(given, request)
    return ParsedLine(request, frozenset(given), notes=notes)
