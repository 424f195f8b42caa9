"""Other tools' prompt syntax translated into dreamline's (``text:weight`` sub-prompts,
``[negative]`` words, ``\\:`` for a literal colon, A1111/compel emphasis).

A1111's emphasis (``(word)``, ``((word))``, ``(word:1.2)``, ``[word]`` = /1.1, ``\\(`` escapes)
and ComfyUI's (the same without ``[word]``) are rewritten by ``attention`` so the fetched command
weighs each word as the other tool did: ``[word]`` becomes ``(word:0.9091)``, since ``[...]`` is
the negative prompt here.  A1111's prompt editing ``[from:to:when]`` and alternation ``[a|b]``
(one prompt per step) cannot be run: their texts are kept and they are named in the note.
InvokeAI 3+'s compel weighting (``word+``, ``(words)1.2``) is kept the same way (written as
``(word:1.1)``; a bare compel group has weight 1); its ``.blend()``/``.and()``/``.swap()`` and
NovelAI's emphasis (``{word}``, ``-1::word::``) are written as plain text and named in a note,
never dropped silently.
``<lora:name:weight>`` tags and ``BREAK`` are kept (dreamline runs both);
other extension tags (``<lyco:...>``, ``<hypernet:...>``) are removed and returned as ``unrun``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dreamline.pngmeta.fields import number_text
from dreamline.pngmeta.readers import attention
from dreamline.prompt_syntax import compel_runs
from dreamline.prompts import escape_weights

_AND = re.compile(r"\bAND\b")
# A1111's trailing sub-prompt weight (composable diffusion): "text :1.2".
_TRAILING_WEIGHT = re.compile(r"^(?P<text>.*?)(?:\s*:\s*(?P<weight>[-+]?(?:\d+\.?|\d*\.\d+)))?\s*$",
                              re.DOTALL)
_TAG = re.compile(r"<(?P<kind>lyco|hypernet|embedding)\s*:[^>]*>", re.IGNORECASE)
_PAREN_WEIGHT = re.compile(r":\s*[-+]?(?:\d+\.?|\d*\.\d+)\s*$")
_NAI_WEIGHT = re.compile(r"-?\d*\.?\d+::(?P<text>.*?)(?:::|$)", re.DOTALL)
_COMPEL_SUFFIX = re.compile(r"(?<=[\w)])[+-]+(?=[\s,.)]|$)")
_COMPEL_WORD = re.compile(r"[\w)]+[+-]+(?=[\s,.)]|$)")
_COMPEL_GROUP_WEIGHT = re.compile(r"\)(?:\d*\.?\d+)")
_COMPEL_FUNCTION = re.compile(r"\.(?:blend|and|swap)\(", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# A1111's prompt editing [from:to:when] / [to:when] and alternation [a|b]: an innermost,
# unescaped square-bracket group holding a colon or a bar.
_EDITING = re.compile(r"(?<!\\)\[(?P<body>[^\[\]]*[:|][^\[\]]*?)(?<!\\)\]")
_EDIT_WHEN = re.compile(r":\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*$")


class Translated(NamedTuple):
    """A prompt in dreamline's syntax, what of the original's syntax it could not keep
    (``lost``: emphasis written as plain text) and what it asked for that dreamline does not
    run (``unrun``: extension tags other than LoRA), both removed from the text."""

    prompt: str
    lost: tuple[str, ...]
    unrun: tuple[str, ...] = ()


def _emphasis(text: str, opening: str, closing: str, lost: list[str]) -> str:
    """Remove unescaped emphasis brackets (and a group's ``:weight``), keep escaped ones as
    plain characters; record each emphasised group in ``lost``."""
    out: list[str] = []
    stack: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
            continue
        if char in opening:
            stack.append(len(out))
        elif char in closing and stack:
            start = stack.pop()
            group = "".join(out[start:])
            weight = _PAREN_WEIGHT.search(group)
            if weight:
                out[start:] = list(group[:weight.start()])
            lost.append(f"{opening[closing.index(char)]}{group.strip()}{char}")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _plain(text: str, style: str, lost: list[str], unrun: list[str]) -> str:
    """One sub-prompt's text in ``style`` ('a1111', 'comfyui', 'novelai', 'compel') in
    dreamline's syntax."""
    for match in _TAG.finditer(text):
        unrun.append(f"{match.group('kind').lower()} tag {match.group(0)}")
    text = _TAG.sub(" ", text)
    if style == "novelai":
        for match in _NAI_WEIGHT.finditer(text):
            lost.append(f"weighted {match.group(0).strip()}")
        text = _NAI_WEIGHT.sub(lambda found: found.group("text"), text)
        text = _emphasis(text, "{[", "}]", lost)
    elif style == "compel" and not _COMPEL_FUNCTION.search(text):
        runs = [attention.Run(piece, weight) for piece, weight in compel_runs(text)]
        return escape_weights(_SPACES.sub(" ", attention.to_ours(runs, lost)).strip())
    elif style == "compel":
        if _COMPEL_FUNCTION.search(text):
            lost.append("compel .blend/.and/.swap")
        lost.extend(match.group(0) for match in _COMPEL_WORD.finditer(text))
        text = _COMPEL_SUFFIX.sub("", _COMPEL_GROUP_WEIGHT.sub(")", text))
        text = _emphasis(text, "(", ")", lost)
    else:
        if style == "a1111":
            text = _EDITING.sub(lambda found: _editing(found, lost), text)
        return escape_weights(_SPACES.sub(" ", attention.translate(
            text, lost, square=style == "a1111")).strip())
    text = text.replace("[", " ").replace("]", " ")  # literal brackets would mean negative here
    return escape_weights(_SPACES.sub(" ", text).strip())


def _editing(found: re.Match[str], lost: list[str]) -> str:
    """The texts of one A1111 prompt-editing or alternation group, named in ``lost``."""
    body = found.group("body")
    lost.append(f"{'alternation' if '|' in body and ':' not in body else 'prompt editing'} "
                f"{found.group(0)} (one prompt for all steps here)")
    texts = body.split("|") if "|" in body else _EDIT_WHEN.sub("", body).split(":")
    return " ".join(text.strip() for text in texts if text.strip())


def translate(positive: str, negative: str = "", *, style: str = "a1111",
              and_parts: bool = True) -> Translated:
    """``positive`` and ``negative`` in another tool's ``style`` as one dreamline prompt.

    With ``and_parts`` (A1111), ``AND`` separates sub-prompts with optional ``:weight``, which
    become dreamline's ``text:weight`` sub-prompts.
    """
    lost: list[str] = []
    unrun: list[str] = []
    parts = _AND.split(positive) if and_parts else [positive]
    if len(parts) > 1:
        words = []
        for part in parts:
            match = _TRAILING_WEIGHT.match(part)
            text = match.group("text") if match else part
            weight = match.group("weight") if match and match.group("weight") else "1"
            words.append(f"{_plain(text, style, lost, unrun)}:{number_text(float(weight))}")
        prompt = " ".join(words)
    else:
        prompt = _plain(positive, style, lost, unrun)
    unwanted = _plain(negative, style, lost, unrun) if negative.strip() else ""
    if unwanted:
        prompt = f"{prompt} [{unwanted}]" if prompt else f"[{unwanted}]"
    return Translated(prompt, tuple(lost), tuple(unrun))


def lost_note(lost: tuple[str, ...], tool: str) -> str | None:
    """The one note for syntax that was written as plain text, or None."""
    lost = tuple(dict.fromkeys(lost))
    if not lost:
        return None
    shown = ", ".join(lost[:6]) + (f", and {len(lost) - 6} more" if len(lost) > 6 else "")
    return (f"{tool}: prompt syntax dreamline has no equivalent for, written as plain text: "
            f"{shown}")
