"""Run one measurement in a fresh process, so its peak memory is its own.

The peak is the kernel's high-water mark of the process's own memory (`VmHWM`): measured in
a fresh process that only imports, opens its inputs and runs the measured call, it bounds
that call's peak from above. Not `ru_maxrss`: a spawned child is forked from this process
before it execs, and Linux carries the forked copy's size (this whole harness, after the
workloads before) into the child's `ru_maxrss`.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _rss_mib() -> float:
    """Current resident set size (Linux); 0 where /proc is unavailable."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _call(function: Callable[..., T], args: tuple[Any, ...]) -> tuple[T, float, float]:
    baseline = _rss_mib()
    result = function(*args)
    return result, baseline, _peak_rss_mib()


def in_child(function: Callable[..., T], *args: Any) -> tuple[T, float, float]:
    """(result, RSS before the call in MiB, peak RSS of the process in MiB)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_call, function, args).result()
