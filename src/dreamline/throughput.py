"""Throughput measured on this machine, kept between runs for the estimates (torch-free).

A measurement is kept per (model hash, device, dtype, torch threads) and latent size: seconds
per UNet call (the guided batch of two counts as one call), seconds per image outside the
sampling loop (the VAE decode) and the peak memory growth of one image.

The store is one JSON file (``STORE_FILE_NAME`` in the user's cache folder), written whole and
atomically under a file lock, so two dreamline processes never lose each other's entries; a
corrupt or unreadable file counts as empty and a failed write costs only the measurement.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

STORE_FILE_NAME = "throughput.json"
STORE_VERSION = 1
LOCK_TIMEOUT_SECONDS = 5.0
_SMOOTHING = 0.5  # a new run's weight against what was kept for the same size

Size = tuple[int, int]  # (width, height) in latent pixels


@dataclass(frozen=True)
class Key:
    """Where a measurement holds: this model on this device, dtype and thread count, at this
    latent size (width, height in latent pixels)."""

    model_hash: str
    device: str  # "cpu", "cuda:0"
    dtype: str  # "float32", "float16"
    threads: int  # torch's CPU threads
    latent: Size

    @property
    def group(self) -> str:
        """The store's key for every size of this model on this machine's settings."""
        return f"{self.model_hash}|{self.device}|{self.dtype}|{self.threads}"


@dataclass(frozen=True)
class Sample:
    """One size's measurement.  ``call_seconds``: seconds per UNet call; ``extra_seconds``:
    seconds per image outside the loop (None: not measured, e.g. by the probe);
    ``peak_bytes``: peak memory growth of one image (None: not measured); ``probe``: timed
    by the probe rather than by a real image."""

    call_seconds: float
    extra_seconds: float | None = None
    peak_bytes: int | None = None
    probe: bool = False

    def merged(self, newer: Sample) -> Sample:
        """What is kept when ``newer`` is measured at the same size: a run replaces a probe,
        runs are averaged (so one disturbed run does not decide the next estimate)."""
        if self.probe or newer.probe:
            return self if newer.probe and not self.probe else newer

        def mix(old: float | None, new: float | None) -> float | None:
            if old is None or new is None:
                return new if new is not None else old
            return (1 - _SMOOTHING) * old + _SMOOTHING * new

        peak = mix(self.peak_bytes, newer.peak_bytes)
        return Sample(float(mix(self.call_seconds, newer.call_seconds) or 0.0),
                      mix(self.extra_seconds, newer.extra_seconds),
                      None if peak is None else int(peak))


MAX_STORED = 1e12  # beyond any real seconds or bytes: a larger stored number is damage


def _sample(raw: Any) -> Sample | None:
    """A stored entry, or None when it is not one (ignored like a corrupt file)."""
    if not isinstance(raw, dict):
        return None
    call, extra, peak = raw.get("call_seconds"), raw.get("extra_seconds"), raw.get("peak_bytes")

    def number(value: Any) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value <= MAX_STORED)

    if call is None or not number(call) or (extra is not None and not number(extra)) or \
            (peak is not None and not number(peak)):
        return None
    return Sample(float(call), None if extra is None else float(extra),
                  None if peak is None else int(peak), bool(raw.get("probe", False)))


def _size_text(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def _parse_size(text: str) -> Size | None:
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        return None
    return int(width), int(height)


class ThroughputStore:
    """Measurements kept between runs in ``path`` (None: kept in memory only, for this run)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, dict[Size, Sample]] = {}
        # (group, latent size) probed through this store in this process (not kept in the file)
        self.probed: set[tuple[str, Size]] = set()

    def _read(self) -> dict[str, dict[Size, Sample]]:
        """The file's groups; {} when it is missing, unreadable, corrupt or of another version."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION or \
                not isinstance(data.get("groups"), dict):
            return {}
        groups: dict[str, dict[Size, Sample]] = {}
        for group, sizes in data["groups"].items():
            if not isinstance(sizes, dict):
                continue
            for size_text, raw in sizes.items():
                size, sample = _parse_size(str(size_text)), _sample(raw)
                if size is not None and sample is not None:
                    groups.setdefault(str(group), {})[size] = sample
        return groups

    def samples(self, group: str) -> dict[Size, Sample]:
        """Every size measured for ``group`` (this run's unsaved ones included)."""
        found = dict(self._read().get(group, {}))
        found.update(self._memory.get(group, {}))
        return found

    def record(self, key: Key, sample: Sample, *, persist: bool = True) -> bool:
        """Keep ``sample`` for ``key`` (merged with what is kept for the size); True when it was
        written to the file.  Never raises for a file problem: the measurement is only lost."""
        kept = self.samples(key.group).get(key.latent)
        merged = kept.merged(sample) if kept is not None else sample
        self._memory.setdefault(key.group, {})[key.latent] = merged
        if self.path is None or not persist:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS):
                groups = self._read()  # another process may have added sizes meanwhile
                on_file = groups.setdefault(key.group, {}).get(key.latent)
                groups[key.group][key.latent] = on_file.merged(sample) if on_file else sample
                self._write(groups)
        except (OSError, Timeout):
            return False
        return True

    def _write(self, groups: dict[str, dict[Size, Sample]]) -> None:
        if self.path is None:
            return
        data = {"version": STORE_VERSION,
                "groups": {group: {_size_text(size): asdict(sample)
                                   for size, sample in sorted(sizes.items())}
                           for group, sizes in sorted(groups.items())}}
        fd, temp_name = tempfile.mkstemp(prefix=".throughput.", suffix=".tmp",
                                         dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1)
            os.replace(temp_name, self.path)
        except OSError:
            Path(temp_name).unlink(missing_ok=True)
            raise
