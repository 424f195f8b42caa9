"""How many CPU threads torch uses: chosen once at start-up, said in one line.

torch's default is one thread per core.  On a shared machine that is often far slower than
fewer threads: measured on this project's 2-core machine, one thread was 6 to 90 times faster
than two whenever anything else ran (each step waits for the slowest thread, and a busy core
makes every step wait).  So the default is the cores that are free now: the cores this process
may use minus the 1-minute load average (rounded), at least one.  ``--threads N`` or
``OMP_NUM_THREADS`` choose for themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dreamline.errors import DreamlineError
from dreamline.plural import counted

MAX_THREADS = 256


class ThreadsError(DreamlineError):
    """A thread count that is not a whole number from 1 to MAX_THREADS."""


def _cores() -> int:
    """The CPU cores this process may run on (its affinity set where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return None


def choose_threads(requested: int | None, *, environ: Mapping[str, str] = os.environ,
                   cores: int | None = None, load: float | None = None) -> tuple[int, str]:
    """(thread count, why) for torch on the CPU.

    ``requested`` is ``--threads`` (None: not given).  Then ``OMP_NUM_THREADS`` if it holds a
    whole number; else the free cores: ``cores`` (default: this process's cores) minus the
    rounded ``load`` (default: the 1-minute load average), at least 1.
    Raises ThreadsError for a ``requested`` count outside 1..MAX_THREADS.
    """
    if requested is not None:
        if not 1 <= requested <= MAX_THREADS:
            raise ThreadsError(f"--threads: {requested} is out of range; expected a whole "
                               f"number from 1 to {MAX_THREADS}")
        return requested, "--threads"
    env = environ.get("OMP_NUM_THREADS", "").strip()
    if env.isascii() and env.isdigit() and 1 <= int(env) <= MAX_THREADS:
        return int(env), "OMP_NUM_THREADS"
    cores = _cores() if cores is None else cores
    load = _load() if load is None else load
    if load is None:
        return cores, counted(cores, "core")
    free = max(1, min(cores, cores - round(load)))
    return free, f"{counted(cores, 'core')}, load {load:.1f}: {free} free"


def apply_threads(requested: int | None) -> str:
    """Set torch's thread count; the line that says how many and why (ThreadsError if bad)."""
    import torch

    count, why = choose_threads(requested)
    torch.set_num_threads(count)
    return threads_line(count, why, _cores())


def threads_line(count: int, why: str, cores: int) -> str:
    """The start-up line for ``count`` threads chosen by ``why``; a count the user chose
    above the ``cores`` here is still used, and the line says it will be slower."""
    plural = "thread" if count == 1 else "threads"
    if why in ("--threads", "OMP_NUM_THREADS") and count > cores:
        given = f"--threads {count}" if why == "--threads" else f"OMP_NUM_THREADS={count}"
        core_word = "core" if cores == 1 else "cores"
        return (f">> {count} CPU {plural} for torch: {given} is more than the {cores} "
                f"{core_word} here; expect it to be slower")
    hint = "" if why == "--threads" else "; --threads N to choose"
    return f">> {count} CPU {plural} for torch ({why}{hint})"
