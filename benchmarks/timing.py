"""Wall-clock timing that is correct on CUDA: warm-up first, synchronize inside the timed region.

CUDA kernels launch asynchronously, so a timer read without `torch.cuda.synchronize()` measures
the launch, not the work; the first calls also pay for lazy initialisation and are not measured.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable

import torch


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call over `repeats` timed calls."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: str | torch.device = "cpu", *, warmup: int = 1,
            min_repeats: int = 3, max_repeats: int = 100, min_time_s: float = 0.05) -> Timing:
    """Time `fn` after `warmup` untimed calls: at least `min_repeats` calls and `min_time_s` seconds."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    while len(times) < min_repeats or (sum(times) < min_time_s and len(times) < max_repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), len(times))
