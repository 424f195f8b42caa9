"""A1111's ``<lora:name:weight>`` prompt tags and ``--lora name:weight`` values, as plain text.

No torch: the parser, the validator and the metadata writers read LoRA names and weights here;
models.lora finds and applies the files.  The tags stay in the prompt text (metadata keeps them,
as A1111 does) and are taken out only of the text that is encoded.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

# <lora:name> or <lora:name:weight>; the name may hold spaces but no ':' '<' '>'.
_TAG = re.compile(r"<lora:([^:<>]*)(?::([^<>]*))?>", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
DEFAULT_WEIGHT = 1.0
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt", ".bin")  # what a LoRA name may leave off


def lora_folder(models_file: Path | None) -> Path | None:
    """Where LoRA names are looked up: ``loras/`` beside the models file (None: no file)."""
    return models_file.parent / "loras" if models_file is not None else None


def lora_candidates(folder: Path, name: str) -> tuple[Path, ...]:
    """The files a LoRA name may mean in ``folder``: the name as given, then with a suffix."""
    return (folder / name, *(folder / f"{name}{suffix}" for suffix in LORA_SUFFIXES))

LoraList = tuple[tuple[str, float], ...]


class LoraTagError(ValueError):
    """A malformed tag or value: the message names it and what was expected."""


def read_weight(text: str, where: str) -> float:
    """A finite decimal weight (negative allowed); LoraTagError naming ``where`` otherwise."""
    text = text.strip()
    if not _NUMBER.fullmatch(text) or not math.isfinite(float(text)):
        raise LoraTagError(f"{where}: {text!r} is not a LoRA weight; expected a number such as "
                           f"0.8 or -0.5")
    return float(text)


def prompt_loras(prompt: str) -> LoraList:
    """The ``<lora:name:weight>`` tags of ``prompt``, in order (weight 1 when left out)."""
    found: list[tuple[str, float]] = []
    for match in _TAG.finditer(prompt):
        name = match.group(1).strip()
        if not name:
            raise LoraTagError(f"{match.group(0)!r} names no LoRA; expected <lora:name:weight>")
        weight = (DEFAULT_WEIGHT if match.group(2) is None
                  else read_weight(match.group(2), match.group(0)))
        found.append((name, weight))
    return tuple(found)


def strip_lora_tags(prompt: str) -> str:
    """``prompt`` without its LoRA tags (the text CLIP sees), spaces around them collapsed."""
    if not _TAG.search(prompt):
        return prompt
    return re.sub(r"[ \t]{2,}", " ", _TAG.sub("", prompt)).strip()


def lora_tag(name: str, weight: float) -> str:
    """The A1111 tag for one LoRA: ``<lora:name:0.8>``."""
    return f"<lora:{name}:{weight!r}>"


def parse_lora_list(raw: str, where: str) -> LoraList:
    """``--lora`` values: 'name:weight,name:weight' (':weight' may be left out: 1).

    The weight follows the last ':'; a one-letter name before it is a Windows drive
    ('C:\\loras\\x.safetensors' has weight 1).
    """
    pairs: list[tuple[str, float]] = []
    for item in raw.split(","):
        item = item.strip()
        name, colon, weight_text = item.rpartition(":")
        if not colon or (len(name) == 1 and not _NUMBER.fullmatch(weight_text.strip())):
            name, weight = item, DEFAULT_WEIGHT  # no weight: 'detail', 'C:\\x.safetensors'
        elif _NUMBER.fullmatch(weight_text.strip()):
            weight = read_weight(weight_text, where)
        else:
            raise LoraTagError(f"{where}: {raw!r} is not a list of LoRA name:weight pairs; "
                               f"{weight_text.strip()!r} is not a weight")
        name = name.strip()
        if not name or any(char in name for char in "<>"):
            raise LoraTagError(f"{where}: {raw!r} is not a list of LoRA name:weight pairs; "
                               f"expected e.g. detail:0.8,style:-0.5")
        pairs.append((name, weight))
    return tuple(pairs)


def format_lora_list(loras: LoraList) -> str:
    """The ``--lora`` value that reads back as ``loras``."""
    return ",".join(f"{name}:{weight!r}" for name, weight in loras)
