"""The peak memory growth of one image, measured without resetting anything in the process."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any


class PeakMemory:
    """Peak memory growth of one image: CUDA's peak allocation on a GPU; on Linux the resident
    set, read every 20 ms by a small thread (/proc/self/statm); elsewhere the growth of the
    process's lifetime peak (a lower bound).  Nothing of the process is reset."""

    INTERVAL = 0.02

    def __init__(self, device: Any) -> None:
        self.cuda = getattr(device, "type", "") == "cuda"
        self.device = device
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stop()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return
        resident = _resident_bytes()
        if resident is None:
            self.base = _lifetime_peak()
            return
        self.base = self.peak = resident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dreamline-peak-memory",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self.peak = max(self.peak, _resident_bytes() or 0)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def growth(self) -> int | None:
        """The peak growth since ``start`` (bytes); stops the watching thread."""
        if self.cuda:
            import torch

            return max(0, torch.cuda.max_memory_allocated(self.device) - self.base)
        if self._thread is not None:
            self.stop()
            return max(0, max(self.peak, _resident_bytes() or 0) - self.base)
        peak = _lifetime_peak()
        return max(0, peak - self.base) if peak else None


def _resident_bytes() -> int | None:
    """The process's resident set now (Linux), None where /proc is not there."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _lifetime_peak() -> int:
    """The process's peak resident set so far (bytes); 0 where it cannot be read."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB else
