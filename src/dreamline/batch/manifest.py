"""The run manifest: one JSON line per finished prompt line, so ``--resume`` skips them.

``<outdir>/dreamline-manifest.jsonl`` gets, after each prompt line whose every image was
written, a record ``{"run", "source", "line", "text", "command", "files", "seeds"}``: the run's
id, the input (the --from_file path, resolved), the 1-based line number, the line as written,
the normalised command (``format_command`` of the line's request), the files written (grid
included) and the images' seeds.  An interrupted or failed line is never recorded, so a resumed
run redoes it.

``--resume`` continues the latest run of the same input in that folder: a line whose number and
text match a record of that run is skipped, and what it produced is recalled for a following
``-S -1`` / ``-I -1``.  ``!`` command lines (``!switch``) always run again, so the model state is
the same as in the first run.  A torn last record (a crash mid-append) is ignored.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError
from dreamline.request import Request

MANIFEST_NAME = "dreamline-manifest.jsonl"


class ManifestError(DreamlineError):
    """The manifest cannot be read or written; the message names it and the OS reason."""


@dataclass(frozen=True)
class LineRecord:
    """One finished line: its number and text, the normalised command, files and seeds."""

    line: int
    text: str
    command: str
    files: tuple[str, ...]
    seeds: tuple[int, ...]


def source_key(source: str) -> str:
    """How an input is named in the manifest: a file's resolved path, or '-' for stdin."""
    return source if source == "-" else str(Path(source).expanduser().resolve())


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every well-formed record of the manifest at ``path`` ([] when there is none yet)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror}") from None
    records = []
    for raw in text.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a record torn by a crash mid-append
        if isinstance(record, dict) and isinstance(record.get("line"), int):
            records.append(record)
    return records


@dataclass
class Manifest:
    """The manifest of one run of one input in ``outdir`` (see the module docstring)."""

    outdir: Path
    source: str  # source_key(...) of the input
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    done: dict[tuple[int, str], LineRecord] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # damaged records resume ignored
    _numbers: set[int] | None = field(default=None, repr=False)  # for ``changed``

    @property
    def path(self) -> Path:
        return self.outdir / MANIFEST_NAME

    @classmethod
    def resume(cls, outdir: Path, source: str) -> Manifest:
        """Continue the latest run of ``source`` recorded in ``outdir`` (a new run if none)."""
        manifest = cls(outdir, source)
        records = [record for record in read_records(manifest.path)
                   if record.get("source") == source and isinstance(record.get("run"), str)]
        if not records:
            return manifest
        manifest.run = records[-1]["run"]
        for record in records:
            if record["run"] != manifest.run:
                continue
            try:
                done = LineRecord(record["line"], str(record.get("text", "")),
                                  str(record.get("command", "")),
                                  tuple(str(name) for name in record.get("files", [])),
                                  tuple(int(seed) for seed in record.get("seeds", [])))
            except (TypeError, ValueError) as exc:  # edited by hand, or by another program
                manifest.problems.append(
                    f"{manifest.path}: the record of line {record['line']} is damaged ({exc}); "
                    "expected a list of file names and whole-number seeds: that line runs again")
                continue
            manifest.done[(done.line, done.text)] = done
        return manifest

    def finished(self, number: int, text: str) -> LineRecord | None:
        """The record of line ``number`` if it finished before with this very text."""
        return self.done.get((number, text))

    def changed(self, number: int, text: str) -> bool:
        """True when line ``number`` finished before, but with other text (the file was edited
        since): ``--resume`` runs it again."""
        if self._numbers is None:  # the earlier run's line numbers, once
            self._numbers = {line for line, _ in self.done}
        return (number, text) not in self.done and number in self._numbers

    def record(self, number: int, text: str, request: Request, files: list[str],
               seeds: list[int]) -> LineRecord:
        """Append one finished line (one write of one line, under the folder's lock)."""
        from dreamline.format import format_command
        from dreamline.outputs import OutputDir

        if request.seed is not None:
            command = format_command(request)
        elif seeds and request.variation_amount == 0:  # the core drew it: the first image's
            command = format_command(request.with_changes(seed=seeds[0]))
        else:  # variations without -S: each file's own command is in its PNG
            command = text
        done = LineRecord(number, text, command, tuple(files), tuple(seeds))
        entry = {"run": self.run, "source": self.source, "line": number, "text": text,
                 "command": done.command, "files": list(done.files), "seeds": list(done.seeds)}
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        directory = OutputDir(self.outdir)
        try:
            directory.ensure()
            with directory.lock():
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                try:
                    os.write(descriptor, data)
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        except OSError as exc:
            raise ManifestError(f"cannot write the manifest {self.path}: {exc.strerror}") from None
        self.done[(number, text)] = done
        return done


def grid_file(request: Request, files: list[str], seeds: list[int]) -> str | None:
    """The grid a -g line wrote beside its first image, if it exists."""
    if not (request.grid and len(files) > 1):
        return None
    first = Path(files[0])
    prefix = first.name.split(".", 1)[0]
    grid = first.with_name(f"{prefix}.{seeds[0]}.grid.png")
    return str(grid) if grid.is_file() else None
