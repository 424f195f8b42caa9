"""The LoRAs a fetched command names, checked against the LoRA folder (``!fetch``).

A LoRA named in the command is found by name (as the generator will look it up); one that is
not there by name but whose A1111 hash (the image's ``Lora hashes`` field) matches a file in the
folder is renamed in the command to that file's name; the rest are named in one note, so the
user knows before running the line.  No torch: the hashes come from the models' hash cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dreamline.errors import DreamlineError
from dreamline.lora_tags import LORA_SUFFIXES, lora_candidates
from dreamline.models.hashing import HashCache
from dreamline.parse import parse_line
from dreamline.request import Request

_HASH_ITEM = re.compile(r"\s*(?P<name>[^:,]+?)\s*:\s*(?P<hash>[0-9a-fA-F]{8,64})\s*(?:,|$)")


def lora_hashes(field: str) -> dict[str, str]:
    """A1111's ``Lora hashes`` field ('name: 0123abcd4567, other: ...') as {name: hash}."""
    return {found.group("name"): found.group("hash").lower()
            for found in _HASH_ITEM.finditer(field)}


class LocalLoras:
    """The LoRA files a session can use: paths, and names in ``folder`` (None: paths only)."""

    def __init__(self, folder: Path | None, hashes: HashCache | None = None) -> None:
        self.folder = folder
        self.hashes = hashes if hashes is not None else HashCache(None)

    def find(self, name: str) -> Path | None:
        """The file ``name`` means, as the generator finds it; None when there is none."""
        given = Path(name).expanduser()
        if given.is_file():
            return given
        if self.folder is None:
            return None
        return next((path for path in lora_candidates(self.folder, name) if path.is_file()),
                    None)

    def by_hash(self, digest: str) -> str | None:
        """The name (file stem) of a LoRA in the folder whose A1111 hash starts like
        ``digest``; None when none does or there is no folder."""
        if self.folder is None or not self.folder.is_dir():
            return None
        for path in sorted(self.folder.iterdir()):
            if path.suffix.lower() not in LORA_SUFFIXES or not path.is_file():
                continue
            try:
                mine = self.hashes.a1111_lora_hash(path)
            except OSError:
                continue
            if mine.startswith(digest[:len(mine)]) or digest.startswith(mine):
                return path.stem
        return None


def user_loras(folder: Path | None) -> LocalLoras:
    """The LoRA files of ``folder`` (None: no folder), their hashes cached per user."""
    from dreamline.models.hashing import CACHE_FILE_NAME
    from dreamline.models.registry import user_cache_dir

    return LocalLoras(folder, HashCache(user_cache_dir() / CACHE_FILE_NAME))


def _renamed(command: str, old: str, new: str) -> str:
    """``command`` with LoRA ``old`` called ``new`` (its prompt tags and --lora values)."""
    command = re.sub(rf"<lora:{re.escape(old)}(?=[:>])", lambda _m: f"<lora:{new}", command,
                     flags=re.IGNORECASE)
    return re.sub(rf"(?<=[\s,]){re.escape(old)}(?=:[-+.\d])", lambda _m: new, command)


def check_loras(command: str, hashes: Mapping[str, str], local: LocalLoras
                ) -> tuple[str, list[str]]:
    """``command`` with LoRAs found by hash renamed, and notes: each rename, a local file
    whose hash differs from the image's, and the LoRAs found neither way (one note)."""
    try:
        names = dict.fromkeys(name for name, _weight in
                              parse_line(command, Request()).request.all_loras)
    except DreamlineError:
        return command, []  # the REPL says what is wrong with the command when it is run
    notes: list[str] = []
    missing: list[str] = []
    for name in names:
        wanted = hashes.get(name)
        path = local.find(name)
        if path is not None:
            mine = local.hashes.a1111_lora_hash(path) if wanted else None
            if wanted and mine and not wanted.startswith(mine[:len(wanted)]):
                notes.append(f"LoRA {name!r}: the local file {path} has A1111 hash {mine}, "
                             f"the image's was {wanted}; it may be another version")
            continue
        other = local.by_hash(wanted) if wanted else None
        if other is not None:
            command = _renamed(command, name, other)
            notes.append(f"LoRA {name!r} is {other!r} here (same A1111 hash {wanted}); the "
                         f"command uses that name")
            continue
        missing.append(name)
    if missing:
        where = f"in {local.folder}" if local.folder is not None else "(no LoRA folder is set)"
        notes.append(f"LoRA file(s) not found {where}: {', '.join(missing)}; the command needs "
                     f"them there (or give a path)")
    return command, notes
